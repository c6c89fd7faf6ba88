//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// Package mmap maps whole files read-only into memory: how the safetensors and GGUF
// readers see weights without copying them.
package mmap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
)

// File maps the whole regular file at path, of at least minSize bytes, and returns the
// mapping and the function that releases it.
func File(path string, minSize int64) ([]byte, func([]byte) error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping stays valid after the descriptor is closed
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	switch {
	case !fi.Mode().IsRegular():
		return nil, nil, errors.New("not a regular file")
	case size < minSize:
		return nil, nil, fmt.Errorf("file of %d bytes is too short (at least %d needed)", size, minSize)
	case size > math.MaxInt:
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return mem, syscall.Munmap, nil
}
