package lineage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

func write(t *testing.T, path string, n int) {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= n; i++ {
		if err := l.Append(fmt.Sprintf("k%d", i), "step", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTornLastLineIsRepaired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lineage.jsonl")
	write(t, path, 2)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq": 3, "key": "k3", "st`) // a crash mid-write
	f.Close()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var x map[string]int
	if ok, err := l.Get("k2", &x); !ok || err != nil || x["i"] != 2 || l.Has("k3") {
		t.Fatal("the log lost a good line or kept the torn one")
	}
	if err := l.Append("k3", "next", nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Append("k1", "step", nil); err != nil { // already there: not written again
		t.Fatal(err)
	}
	l.Close()
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := l.Events(); len(ev) != 3 || ev[2].Key != "k3" || ev[2].Seq != 3 {
		t.Fatalf("events %+v", ev)
	}
}

// TestLastLineWithoutNewline: a complete last line that lost only its newline is kept.
func TestLastLineWithoutNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lineage.jsonl")
	write(t, path, 2)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.TrimSuffix(b, []byte("\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, path, 3) // k1, k2 again (kept), k3 new
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := l.Events(); len(ev) != 3 || ev[1].Key != "k2" || ev[2].Seq != 3 {
		t.Fatalf("events %+v", ev)
	}
}

// TestCorruptLineIsAnError: a bad line anywhere but at the torn end stops Open with the
// line's number and leaves every byte of the file as it was.
func TestCorruptLineIsAnError(t *testing.T) {
	for name, corrupt := range map[string]func([]string) []string{
		"syntax": func(ls []string) []string { ls[4] = strings.Replace(ls[4], `"seq":5,`, `"seq":5,,`, 1); return ls },
		"seq":    func(ls []string) []string { ls[4] = strings.Replace(ls[4], `"seq":5,`, `"seq":9,`, 1); return ls },
		"dup":    func(ls []string) []string { ls[4] = strings.Replace(ls[4], `"key":"k5"`, `"key":"k2"`, 1); return ls },
		"last":   func(ls []string) []string { ls[11] = ls[11][:20]; return ls }, // with its newline: not torn
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lineage.jsonl")
			write(t, path, 12)
			b, _ := os.ReadFile(path)
			lines := corrupt(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
			bad := []byte(strings.Join(lines, "\n") + "\n")
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			want := "line 5"
			if name == "last" {
				want = "line 12"
			}
			if _, err := Open(path); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open: %v, want an error naming %s", err, want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
				t.Fatalf("the log changed: %d bytes before, %d after", len(bad), len(after))
			}
		})
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere.jsonl")
	write(t, target, 3)
	before, _ := os.ReadFile(target)
	link := filepath.Join(dir, "lineage.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, fsutil.ErrSymlink) {
		t.Fatalf("Open through a link: %v", err)
	}
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Fatal("the link's target changed")
	}
}

func TestGetReportsUndecodableData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lineage.jsonl")
	write(t, path, 1)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var s string
	if ok, err := l.Get("k1", &s); !ok || err == nil {
		t.Fatalf("Get into the wrong type: %v %v", ok, err)
	}
	if ok, err := l.Get("nope", &s); ok || err != nil {
		t.Fatalf("Get of a missing key: %v %v", ok, err)
	}
	if l.Last("step").Key != "k1" || l.Last("none") != nil {
		t.Fatal("Last")
	}
}
