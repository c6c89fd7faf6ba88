// Package jsonl walks JSON Lines files.
package jsonl

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
)

// Lines calls fn with the 1-based number and text of every non-blank line of path (lines
// up to 64 MB). An error from fn stops the walk and is returned as it is.
func Lines(path string, fn func(n int, line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
