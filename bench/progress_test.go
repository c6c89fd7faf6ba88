package bench

import (
	"strings"
	"testing"
	"time"
)

// TestProgressResume: a resumed run sees the phases the interrupted one finished and
// their scores, adds its time to theirs, and refuses other settings or a folder with
// no run in it.
func TestProgressResume(t *testing.T) {
	work := t.TempDir()
	if _, err := OpenProgress(work, "task=a", true); err == nil || !strings.Contains(err.Error(), "no run to resume") {
		t.Fatalf("resume in an empty folder: %v", err)
	}
	p, err := OpenProgress(work, "task=a", false)
	if err != nil {
		t.Fatal(err)
	}
	stop := p.Time("deploy")
	time.Sleep(20 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil { // a second stop is harmless
		t.Fatal(err)
	}
	if err := p.Finish("deploy", [2]float64{0.5, 3}); err != nil {
		t.Fatal(err)
	}
	first := p.Spent("deploy")
	if first < 0.02 {
		t.Fatalf("deploy took %g s, want at least 0.02", first)
	}
	if _, err := OpenProgress(work, "task=b", true); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Fatalf("resume with other settings: %v", err)
	}
	q, err := OpenProgress(work, "task=a", true)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := q.Done("deploy"); !ok || s != [2]float64{0.5, 3} || q.Resumed != 1 {
		t.Fatalf("resumed progress: %+v", q)
	}
	stop = q.Time("deploy")
	time.Sleep(20 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := q.Spent("deploy"); got < first+0.02 {
		t.Fatalf("deploy's time after resuming: %g s, want at least %g", got, first+0.02)
	}
	// Starting again without -resume forgets the old run.
	r, err := OpenProgress(work, "task=a", false)
	if _, done := r.Done("deploy"); err != nil || done || r.Spent("deploy") != 0 {
		t.Fatalf("a fresh start kept the old run: %+v, %v", r, err)
	}
}
