package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	if err := WriteFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	// A failed write (target is a non-empty folder) leaves no temporary file behind.
	_ = os.MkdirAll(filepath.Join(dir, "sub", "x"), 0o755)
	if err := WriteFileAtomic(filepath.Join(dir, "sub"), []byte("three")); err == nil {
		t.Fatal("rename over a non-empty folder succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left %d entries: %v", len(entries), entries)
	}
}

// TestStateFilesRefuseSymlinks: a state file replaced by a link is not read through it,
// and writing it replaces the link, leaving its target alone.
func TestStateFilesRefuseSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := NotSymlink(link); !errors.Is(err, ErrSymlink) {
		t.Fatalf("NotSymlink: %v", err)
	}
	if _, err := ReadState(link); !errors.Is(err, ErrSymlink) {
		t.Fatalf("ReadState: %v", err)
	}
	if err := NotSymlink(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatalf("the link's target was overwritten: %q", b)
	}
	if b, err := ReadState(link); err != nil || string(b) != "new" {
		t.Fatalf("after the write: %q %v", b, err)
	}
}
