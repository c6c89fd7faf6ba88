package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model/gguf"
)

// A GGUF file opens as a Hugging Face folder that model/gguf writes once into the user
// cache: config.json, tokenizer.json, tokenizer_config.json, generation_config.json and
// model.gguf, a link to the file itself. The weights are read from the GGUF on every
// load (dequantized to float32, then to the requested dtype), never copied to disk.

// GGUFWeights is the name of the weights link in such a folder.
const GGUFWeights = "model.gguf"

// companionsVersion changes whenever model/gguf writes different companion files, so
// that folders written by an older Pioneer are rebuilt.
const companionsVersion = "1"

// IsGGUF reports whether path is a GGUF file (by its magic, not its name).
func IsGGUF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return string(b[:]) == "GGUF"
}

// ggufFolder returns the cached Hugging Face folder of the GGUF file at path, writing it
// when absent or when the file changed since (the folder is keyed by the file's absolute
// path, size and modification time).
func ggufFolder(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%s", abs, st.Size(), st.ModTime().UnixNano(), companionsVersion)))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	dir := filepath.Join(cache, "pioneer", "gguf", base+"-"+hex.EncodeToString(key[:6]))
	stamp := filepath.Join(dir, ".complete")
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil
	}
	f, err := gguf.Open(abs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := f.HuggingFace()
	if err != nil {
		return "", err
	}
	// Written aside and renamed into place: a concurrent open of the same file either
	// finds the finished folder or writes its own and keeps whichever landed first.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename; left only when something failed
	if err := m.WriteCompanions(tmp); err != nil {
		return "", err
	}
	if err := os.Symlink(abs, filepath.Join(tmp, GGUFWeights)); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(abs+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(stamp); serr == nil {
			return dir, nil // another process finished first
		}
		// a folder without its stamp is an older attempt that died: replace it
		if rerr := os.RemoveAll(dir); rerr != nil {
			return "", rerr
		}
		if err := os.Rename(tmp, dir); err != nil {
			return "", err
		}
	}
	return dir, fsutil.SyncDir(filepath.Dir(dir))
}

// WeightFiles lists the weight files of a model folder: model.gguf (a GGUF file's folder),
// model.safetensors, or the shards model.safetensors.index.json names.
func WeightFiles(dir string) ([]string, error) {
	for _, single := range []string{GGUFWeights, "model.safetensors"} {
		p := filepath.Join(dir, single)
		if _, err := os.Stat(p); err == nil {
			return []string{p}, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	found, err := fsutil.ReadJSON(indexPath, &index)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s has no weights: neither model.safetensors, model.safetensors.index.json nor %s", dir, GGUFWeights)
	}
	var files []string
	for _, f := range index.WeightMap {
		if p := filepath.Join(dir, f); !slices.Contains(files, p) {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	return files, nil
}

// loadGGUF is LoadFile for a GGUF file: its tensors under their Hugging Face names,
// dequantized.
func (w *Weights) loadGGUF(path string, want map[string][]int64, key func(string) string, skip func(string) bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := f.HuggingFace()
	if err != nil {
		return err
	}
	var buf gguf.Buffers
	for _, name := range m.Names() {
		k := key(name)
		sh, ok := want[k]
		if !ok {
			if skip(name) {
				continue
			}
			return fmt.Errorf("%s: unexpected weight %q for this config", path, name)
		}
		v, shape, err := m.TensorInto(name, &buf)
		if err != nil {
			return err
		}
		if !slices.Equal(shape, sh) {
			return fmt.Errorf("%s: weight %q has shape %v, config implies %v", path, name, shape, sh)
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
		if err := w.store(k, raw, shape, torch.Float32); err != nil {
			return fmt.Errorf("%s: weight %q: %w", path, name, err)
		}
	}
	return nil
}
