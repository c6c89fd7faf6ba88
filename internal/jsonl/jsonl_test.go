package jsonl

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lines(t *testing.T, text string, maxLine int) []Line {
	t.Helper()
	var got []Line
	if err := Read(strings.NewReader(text), maxLine, func(l Line) error {
		l.Bytes = append([]byte(nil), l.Bytes...)
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadSkipsBlankLinesAndTrims(t *testing.T) {
	got := lines(t, "{\"a\":1}\n\n  \n{\"b\":2}  \n", 0)
	if len(got) != 2 || got[0].N != 1 || got[1].N != 4 || string(got[1].Bytes) != `{"b":2}` {
		t.Fatalf("lines %+v", got)
	}
	// no newline at the end, and a byte-order mark on the first line
	got = lines(t, "\xef\xbb\xbf{\"a\":1}\n{\"b\":2}", 0)
	if len(got) != 2 || string(got[0].Bytes) != `{"a":1}` || string(got[1].Bytes) != `{"b":2}` {
		t.Fatalf("lines %+v", got)
	}
	if got := lines(t, "", 0); len(got) != 0 {
		t.Fatalf("empty input gave %+v", got)
	}
}

// TestReadBoundsALine: a line over the limit is reported, not held whole, and the lines
// after it are read as usual, whatever the buffer boundaries.
func TestReadBoundsALine(t *testing.T) {
	long := strings.Repeat("x", 300_000)
	got := lines(t, "{\"a\":1}\n"+long+"\n{\"b\":2}\n"+strings.Repeat("y", 100), 100)
	if len(got) != 4 {
		t.Fatalf("%d lines", len(got))
	}
	if !got[1].TooLong || got[1].Len != 300_000 || len(got[1].Bytes) != rawKept || got[1].N != 2 {
		t.Fatalf("long line: too long %v, len %d, kept %d", got[1].TooLong, got[1].Len, len(got[1].Bytes))
	}
	if got[2].TooLong || string(got[2].Bytes) != `{"b":2}` || got[3].TooLong || got[3].Len != 100 {
		t.Fatalf("after the long line: %+v %+v", got[2], got[3])
	}
	if e := Bad(got[1], "%s", got[1].TooLongReason(100)); !e.RawCut || !strings.Contains(e.Reason, "300000 bytes") {
		t.Fatalf("line error %+v", e)
	}
}

func TestBadKeepsBinaryBytes(t *testing.T) {
	raw := []byte{0xff, 0xfe, 'a', 0x00}
	e := Bad(Line{N: 3, Bytes: raw}, "not JSON")
	b, err := base64.StdEncoding.DecodeString(e.RawBase64)
	if e.Raw != "" || err != nil || string(b) != string(raw) || e.Error() != "line 3: not JSON" {
		t.Fatalf("%+v", e)
	}
	if e := Bad(Line{N: 1, Bytes: []byte("ok")}, "x"); e.Raw != "ok" || e.RawBase64 != "" {
		t.Fatalf("%+v", e)
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.jsonl")
	if err := os.WriteFile(p, []byte("{}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	if err := ReadFile(p, 0, func(Line) error { return stop }); err != stop {
		t.Fatalf("err %v", err)
	}
	err := ReadFile(p, 0, func(l Line) error { return Bad(l, "no good") })
	if err == nil || err.Error() != p+":1: no good" {
		t.Fatalf("err %v", err)
	}
	if err := ReadFile(filepath.Join(t.TempDir(), "missing"), 0, nil); err == nil {
		t.Fatal("missing file")
	}
}
