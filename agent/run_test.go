package agent

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary hold a run folder in a child process (see holdInChild).
func TestMain(m *testing.M) {
	if dir := os.Getenv("PIONEER_TEST_HOLD_RUN"); dir != "" {
		r, err := Create(dir)
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		r.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInChild starts a process that holds dir and returns it once it does.
func holdInChild(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PIONEER_TEST_HOLD_RUN="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("child: %q", line)
	}
	return cmd
}

// TestRunFolderLock: a second holder is refused, naming the first's PID; a holder killed
// with SIGKILL leaves no stale lock behind.
func TestRunFolderLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	child := holdInChild(t, dir)
	_, err := Create(dir)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "PID ") {
		child.Process.Kill()
		t.Fatalf("second holder: %v", err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	r, err := Create(dir)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	// In one process too: a second open waits for Close.
	if _, err := Open(dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("second open in the same process: %v", err)
	}
	r.Close()
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// TestOpenNeedsARun: approve and rollback on a folder that holds no run create nothing.
func TestOpenNeedsARun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "does", "not", "exist")
	if _, err := Open(missing); err == nil {
		t.Fatal("opened a missing folder")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Open created folders")
	}
	empty := t.TempDir()
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "holds no run") {
		t.Fatalf("a folder without a lineage: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("Open wrote %v", entries)
	}
}

// TestStartRefusesOtherSettings and records the first start only.
func TestStartRefusesOtherSettings(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(Settings{"failures": "abc", "epochs": "3"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(Settings{"failures": "abc", "epochs": "3"}, nil); err != nil {
		t.Fatalf("the same settings: %v", err)
	}
	err = r.Start(Settings{"failures": "def", "epochs": "3"}, nil)
	if !errors.Is(err, ErrOtherRun) || !strings.Contains(err.Error(), `failures="abc", not "def"`) {
		t.Fatalf("other settings: %v", err)
	}
	if n := len(r.Lineage.Events()); n != 1 {
		t.Fatalf("%d lineage events, want 1 start", n)
	}
	r.Close()
}

// TestStepRunsOnce: a recorded step is not run again, its result comes from the lineage;
// a stop request stops before a step.
func TestStepRunsOnce(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	type result struct{ N int }
	calls := 0
	f := func() (result, error) { calls++; return result{42}, nil }
	for range 2 {
		got, err := Step(context.Background(), r, "count", "counted", f)
		if err != nil || got.N != 42 {
			t.Fatalf("%+v %v", got, err)
		}
	}
	r.Close()
	r, _ = Create(dir)
	defer r.Close()
	if got, err := Step(context.Background(), r, "count", "counted", f); err != nil || got.N != 42 || calls != 1 {
		t.Fatalf("after reopening: %+v %v, %d calls", got, err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Step(ctx, r, "other", "x", f); !errors.Is(err, ErrStopped) || calls != 1 {
		t.Fatalf("stopped: %v, %d calls", err, calls)
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(0, 100)
	if b.Spent() != "" {
		t.Fatal("a fresh budget is spent")
	}
	b.Use(100)
	if !strings.Contains(b.Spent(), "token budget of 100") {
		t.Fatal(b.Spent())
	}
	w := NewBudget(time.Nanosecond, 0)
	time.Sleep(time.Millisecond)
	if !strings.Contains(w.Spent(), "wall-time") {
		t.Fatal(w.Spent())
	}
}
