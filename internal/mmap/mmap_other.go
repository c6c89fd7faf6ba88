//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

// Package mmap maps whole files read-only into memory: how the safetensors and GGUF
// readers see weights without copying them. Here, without mmap, files are read.
package mmap

import (
	"fmt"
	"os"
)

// File reads the whole file at path, of at least minSize bytes.
func File(path string, minSize int64) ([]byte, func([]byte) error, error) {
	mem, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if int64(len(mem)) < minSize {
		return nil, nil, fmt.Errorf("file of %d bytes is too short (at least %d needed)", len(mem), minSize)
	}
	return mem, func([]byte) error { return nil }, nil
}
