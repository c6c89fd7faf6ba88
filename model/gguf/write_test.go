package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestBuilderRewritesTheFixtureByteForByte rebuilds quants.gguf (written by gguf-py's
// GGUFWriter) from what Open read and expects the same bytes.
func TestBuilderRewritesTheFixtureByteForByte(t *testing.T) {
	f := openFixture(t)
	b := NewBuilder()
	b.Alignment = f.Alignment
	for _, kv := range f.Metadata {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors {
		if err := b.AddTensor(ti.Name, ti.Type, ti.Shape(), f.Raw(ti)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "copy.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(quantsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%d bytes written, gguf-py wrote %d; first difference at byte %d", len(got), len(want), n)
	}
}

func TestBuilderRejectsBadInput(t *testing.T) {
	b := NewBuilder()
	if err := b.Set("k", 1); err == nil {
		t.Error("an int (no GGUF width) was accepted")
	}
	if err := b.Set("k", uint32(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("k", uint32(2)); err == nil {
		t.Error("a repeated key was accepted")
	}
	if err := b.AddTensor("w", Q8_0, []int64{2, 32}, make([]byte, 34)); err == nil {
		t.Error("a tensor with too few bytes was accepted")
	}
	if err := b.AddTensor("w", Q8_0, []int64{2, 31}, make([]byte, 68)); err == nil {
		t.Error("a row of partial blocks was accepted")
	}
}
