package jsonl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.jsonl")
	_ = os.WriteFile(p, []byte("{\"a\":1}\n\n  \n{\"b\":2}  \n"), 0o644)
	var got []int
	if err := Lines(p, func(n int, line []byte) error {
		got = append(got, n)
		if line[len(line)-1] != '}' {
			t.Fatalf("line %d not trimmed: %q", n, line)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("lines %v", got)
	}
	stop := errors.New("stop")
	if err := Lines(p, func(int, []byte) error { return stop }); err != stop {
		t.Fatalf("err %v", err)
	}
	if err := Lines(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("missing file")
	}
}
