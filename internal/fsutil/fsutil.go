// Package fsutil holds file helpers shared across Pioneer's packages.
package fsutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic replaces path with data so that a crash leaves either the old file or
// the complete new one: it writes a temporary file in the same folder, syncs it and
// renames it over path (a symbolic link at path is replaced, never followed), then syncs
// the folder so the rename itself survives a power cut.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir flushes a folder's entries (a rename or a new file in it) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ErrSymlink is returned (wrapped) for a state file that is a symbolic link: Pioneer
// writes its state files itself and never follows a link someone put in their place.
var ErrSymlink = errors.New("is a symbolic link")

// NotSymlink returns an error wrapping ErrSymlink when path is a symbolic link; a missing
// path is fine.
func NotSymlink(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s %w; refusing to follow it (state files are Pioneer's own)", path, ErrSymlink)
	}
	return nil
}

// ReadState reads a state file that must not be a symbolic link (opened without following
// one, so it cannot be swapped for a link in between).
func ReadState(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s %w; refusing to follow it (state files are Pioneer's own)", path, ErrSymlink)
		}
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteJSONL writes rows as JSON lines, one object per line, atomically, making the
// parent folder if need be.
func WriteJSONL[T any](path string, rows []T) error {
	var buf []byte
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		buf = append(append(buf, b...), '\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return WriteFileAtomic(path, buf)
}

// WriteJSON writes v as indented JSON, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// ReadJSON decodes the JSON state file at path into v (ReadState: never through a
// symbolic link); found is false, and v left as it is, when there is no such file.
func ReadJSON(path string, v any) (found bool, err error) {
	b, err := ReadState(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}
