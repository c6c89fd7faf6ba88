package versions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/pioneer-ai/pioneer/model/all"
)

const adapterFixture = "../../testdata/peft/llama_all/adapter"

// copyDir copies a fixture folder so a test can damage it.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), filepath.Base(from))
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func truncate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAddVerifyAndCurrent(t *testing.T) {
	run := t.TempDir()
	s, err := Open(run, true)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := s.Current(); err != nil || cur != "" {
		t.Fatalf("empty store: %q %v", cur, err)
	}
	v0, err := s.Add(adapterFixture, Meta{Source: adapterFixture}, nil)
	if err != nil || v0 != "v0" {
		t.Fatalf("add: %q %v", v0, err)
	}
	if _, err := s.Current(); !errors.Is(err, ErrNoCurrent) {
		t.Fatalf("versions without CURRENT: %v", err)
	}
	if err := s.SetCurrent(v0); err != nil {
		t.Fatal(err)
	}
	v1, err := s.Add("../../testdata/models/llama", Meta{Candidate: "iter1/A"}, []int{1, 2})
	if err != nil || v1 != "v1" {
		t.Fatalf("add a model folder: %q %v", v1, err)
	}
	m, err := s.Meta(v1)
	if err != nil || m.Kind != Model || m.Files["model.safetensors"] == "" || m.Candidate != "iter1/A" {
		t.Fatalf("meta %+v %v", m, err)
	}
	var set []int
	if ok, err := s.EvalSet(v1, &set); !ok || err != nil || len(set) != 2 {
		t.Fatalf("eval set %v %v %v", set, ok, err)
	}
	if found, err := s.Find("iter1/A"); found != v1 || err != nil {
		t.Fatalf("find: %q %v", found, err)
	}
	if found, _ := s.Find("iter2/A"); found != "" {
		t.Fatalf("found %q for a candidate never added", found)
	}
	if list, _ := s.List(); strings.Join(list, ",") != "v0,v1" {
		t.Fatalf("list %v", list)
	}
	// A version whose weights changed after it was made cannot become current.
	truncate(t, filepath.Join(s.Dir(v1), "model.safetensors"))
	if err := s.SetCurrent(v1); err == nil || !strings.Contains(err.Error(), "has changed") {
		t.Fatalf("set current to damaged weights: %v", err)
	}
	if cur, _ := s.Current(); cur != v0 {
		t.Fatalf("current %q after a refused switch", cur)
	}
	// Names only, never paths.
	for _, bad := range []string{"../../../dep/adapter", "v1/../v0", "/tmp/x", "V1", "v01"} {
		if err := s.SetCurrent(bad); err == nil {
			t.Errorf("SetCurrent(%q) accepted", bad)
		}
	}
}

// TestAddChecksFirst: a damaged folder is refused before anything is copied.
func TestAddChecksFirst(t *testing.T) {
	run := t.TempDir()
	s, err := Open(run, true)
	if err != nil {
		t.Fatal(err)
	}
	cut := copyDir(t, adapterFixture)
	truncate(t, filepath.Join(cut, "adapter_model.safetensors"))
	if _, err := s.Add(cut, Meta{}, nil); err == nil {
		t.Fatal("truncated adapter weights accepted")
	}
	noB := copyDir(t, adapterFixture)
	if err := os.WriteFile(filepath.Join(noB, "adapter_model.safetensors"), []byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(noB, Meta{}, nil); err == nil || !strings.Contains(err.Error(), "no weights") {
		t.Fatalf("empty adapter weights: %v", err)
	}
	if _, err := s.Add(t.TempDir(), Meta{}, nil); err == nil || !strings.Contains(err.Error(), "neither a PEFT adapter") {
		t.Fatalf("empty folder: %v", err)
	}
	s.Check = func(string) error { return errors.New("does not fit the base model") }
	if _, err := s.Add(adapterFixture, Meta{}, nil); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("the store's check: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(run, "versions")); len(entries) != 0 {
		t.Fatalf("refused folders left %v", entries)
	}
	// A link in place of a weights file is not followed.
	linked := copyDir(t, adapterFixture)
	os.Remove(filepath.Join(linked, "adapter_model.safetensors"))
	abs, _ := filepath.Abs(filepath.Join(adapterFixture, "adapter_model.safetensors"))
	if err := os.Symlink(abs, filepath.Join(linked, "adapter_model.safetensors")); err != nil {
		t.Fatal(err)
	}
	s.Check = nil
	if _, err := s.Add(linked, Meta{}, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a linked weights file: %v", err)
	}
}

// TestOpenClearsAnInterruptedAdd: what a crash in the middle of Add left is removed, and
// numbering goes on from the versions that exist.
func TestOpenClearsAnInterruptedAdd(t *testing.T) {
	run := t.TempDir()
	s, _ := Open(run, true)
	if _, err := s.Add(adapterFixture, Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(run, "versions", ".tmp-v1-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(run, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "versions", ".tmp-v1-123")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the interrupted copy is still there")
	}
	if v, err := s.Add(adapterFixture, Meta{}, nil); v != "v1" || err != nil {
		t.Fatalf("next version %q %v", v, err)
	}
	if _, err := Open(filepath.Join(run, "nothing"), false); err != nil {
		t.Fatalf("opening a store that does not exist yet: %v", err)
	}
	if _, err := os.Stat(filepath.Join(run, "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Open without create made folders")
	}
}
