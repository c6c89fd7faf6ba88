package production

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/model"
)

// TestBaseSumOfAGGUFFolder: a GGUF file's companion folder (its weights a link to the
// file) is fingerprinted by the file it links to and its companions; another file gives
// another fingerprint.
func TestBaseSumOfAGGUFFolder(t *testing.T) {
	sums := map[string]string{}
	for _, name := range []string{"llama", "qwen2"} {
		src, err := filepath.Abs(filepath.Join("../../testdata/gguf/models", name+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(t.TempDir(), name+".gguf") // a copy of our own: the folder is keyed by path
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(link, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("XDG_CACHE_HOME", t.TempDir())
		dir, err := model.Folder(link)
		if err != nil {
			t.Fatal(err)
		}
		if sums[name], err = baseSum(dir); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := baseSum(dir)
		if err != nil || again != sums[name] {
			t.Fatalf("%s: fingerprint %s then %s (%v)", name, sums[name], again, err)
		}
	}
	if sums["llama"] == sums["qwen2"] {
		t.Fatal("two GGUF files have the same fingerprint")
	}
}
