package model

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestGGUFFolderRaces: opens of one GGUF file at once all get the same finished folder,
// and a folder an earlier attempt left without its stamp is replaced.
func TestGGUFFolderRaces(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	b, err := os.ReadFile("../testdata/gguf/models/llama.gguf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsGGUF(path) {
		t.Fatal("IsGGUF is false for a GGUF file")
	}
	dirs := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dirs[i], errs[i] = Folder(path)
		}(i)
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		if dirs[i] != dirs[0] {
			t.Fatalf("open %d got %s, open 0 %s", i, dirs[i], dirs[0])
		}
	}
	for _, f := range []string{"config.json", "generation_config.json", GGUFWeights, ".complete"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Error(err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dirs[0]), "*.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}
	// a torn folder: no stamp, a stray file
	if err := os.Remove(filepath.Join(dirs[0], ".complete")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirs[0], "junk"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Folder(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(again, "junk")); err == nil {
		t.Error("the torn folder was kept")
	}
	if _, err := os.Stat(filepath.Join(again, ".complete")); err != nil {
		t.Error(err)
	}
}
