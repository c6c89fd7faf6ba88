package gguf

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDequantizeSmolLM2 dequantizes every tensor of the installed SmolLM2 GGUF, as
// a model load does.
func BenchmarkDequantizeSmolLM2(b *testing.B) {
	cache, _ := os.UserCacheDir()
	f, err := Open(filepath.Join(cache, "pioneer", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	m, err := f.HuggingFace()
	if err != nil {
		b.Fatal(err)
	}
	var buf Buffers
	for i := 0; i < b.N; i++ {
		for _, n := range m.Names() {
			if _, _, err := m.TensorInto(n, &buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
