//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gguf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
)

// mapFile maps the whole file at path into memory read-only and returns the
// mapping and the function that releases it.
func mapFile(path string) ([]byte, func([]byte) error, error) {
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
	case size < 24:
		return nil, nil, fmt.Errorf("file of %d bytes is too short for a GGUF header", size)
	case size > math.MaxInt:
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return mem, syscall.Munmap, nil
}
