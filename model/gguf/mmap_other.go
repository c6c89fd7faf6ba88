//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gguf

import "os"

// mapFile reads the whole file at path into memory, on systems where this
// package does not use mmap.
func mapFile(path string) ([]byte, func([]byte) error, error) {
	mem, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return mem, func([]byte) error { return nil }, nil
}
