package model_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/model"
)

func TestIsModelDir(t *testing.T) {
	for dir, want := range map[string]bool{
		"../testdata/models/llama":         true,
		"../testdata/models/llama_sharded": true, // an index of shards
		"../testdata/peft/llama_all":       false,
		t.TempDir():                        false,
	} {
		if got := model.IsModelDir(dir); got != want {
			t.Errorf("IsModelDir(%s) = %v, want %v", dir, got, want)
		}
	}
}

func TestCopyCompanionFiles(t *testing.T) {
	from, to := "../data/models/pioneer-nano", t.TempDir()
	if err := model.CopyCompanionFiles(from, to); err != nil {
		t.Fatal(err)
	}
	copied := 0
	for _, f := range model.CompanionFiles {
		want, err := os.ReadFile(filepath.Join(from, f))
		got, err2 := os.ReadFile(filepath.Join(to, f))
		switch {
		case err != nil && err2 == nil:
			t.Errorf("%s appeared in the copy without a source", f)
		case err == nil && (err2 != nil || !bytes.Equal(got, want)):
			t.Errorf("%s not copied intact: %v", f, err2)
		case err == nil:
			copied++
		}
	}
	if copied < 3 {
		t.Fatalf("only %d companion files copied from %s", copied, from)
	}
	if err := model.CopyCompanionFiles(from, filepath.Join(to, "missing", "dir")); err == nil {
		t.Fatal("copying into a folder that does not exist succeeded")
	}
}
