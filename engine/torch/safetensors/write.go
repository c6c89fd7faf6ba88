package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Tensor is a tensor to be written: its name, element type, shape and raw
// little-endian, row-major bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Write writes tensors, sorted by name, and metadata (omitted if empty) as
// a safetensors file at path, replacing any existing file atomically: the
// file is written to a temporary file in the same directory, synced, renamed
// over path, and the directory is synced. Tensors are validated first: names
// must be non-empty, unique and not "__metadata__", and len(Data) must match
// the shape and dtype. On any error before the rename the previous file at
// path is untouched and no temporary file is left behind; only a failure to
// sync the directory is reported after the file was replaced.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	if err := write(path, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}

func write(path string, tensors []Tensor, metadata map[string]string) (err error) {
	order := make([]*Tensor, len(tensors))
	for i := range tensors {
		order[i] = &tensors[i]
	}
	slices.SortFunc(order, func(a, b *Tensor) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range order {
		switch {
		case t.Name == "":
			return errors.New("tensor with empty name")
		case !utf8.ValidString(t.Name):
			return fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case t.Name == metadataKey:
			return fmt.Errorf("tensor name %q is reserved", metadataKey)
		case i > 0 && order[i-1].Name == t.Name:
			return fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		n, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if int64(len(t.Data)) != n {
			return fmt.Errorf("tensor %q: %d data bytes but shape %s of %s needs %d bytes", t.Name, len(t.Data), formatShape(t.Shape), t.DType, n)
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	header := encodeHeader(order, metadata)
	if len(header) > MaxHeaderLen {
		return fmt.Errorf("header of %d bytes exceeds limit of %d bytes", len(header), MaxHeaderLen)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	w.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(header))))
	w.Write(header)
	for _, t := range order {
		w.Write(t.Data) // errors stick in w and are returned by Flush
	}
	rename := func() error { return os.Rename(tmp.Name(), path) }
	for _, step := range []func() error{w.Flush, tmp.Sync, tmp.Close, rename} {
		if err := step(); err != nil {
			return err
		}
	}
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("sync directory after rename: %w", err)
	}
	return nil
}

// encodeHeader returns the JSON header for tensors laid out in the given
// order, padded with spaces to a multiple of 8 bytes so that the data buffer
// starts 8-byte aligned.
func encodeHeader(order []*Tensor, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	sep := ""
	if len(metadata) > 0 {
		b.WriteString(quote(metadataKey) + ":{")
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quote(k) + ":" + quote(metadata[k]))
		}
		b.WriteByte('}')
		sep = ","
	}
	var off int64
	for _, t := range order {
		end := off + int64(len(t.Data))
		fmt.Fprintf(&b, `%s%s:{"dtype":%s,"shape":%s,"data_offsets":[%d,%d]}`,
			sep, quote(t.Name), quote(string(t.DType)), formatShape(t.Shape), off, end)
		off, sep = end, ","
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// quote returns s as a JSON string, without HTML escaping.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
