package production_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/lineage"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/deployfixture"
)

// The tests here run production mode in child processes (the test binary itself, see
// TestMain) so that they can be killed, signalled and raced as an operator's commands
// are. internal/crash points (PIONEER_CRASH_AT, PIONEER_SIGNAL_AT) pick the moment.

// job is what a child process runs.
type job struct {
	Command  string // "run", "approve", "rollback"
	TaskDir  string
	Deployed string
	Parent   string
	Failures string
	Out      string
	Manual   bool
	To       string // rollback
}

// stoppedExit is a child's exit status after a stop request.
const stoppedExit = 3

func TestMain(m *testing.M) {
	if spec := os.Getenv("PIONEER_TEST_CHILD"); spec != "" {
		os.Exit(runChild(spec))
	}
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func runChild(spec string) int {
	var j job
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var stoppedAt time.Time
	context.AfterFunc(ctx, func() { stoppedAt = time.Now() })
	var out any
	var err error
	switch j.Command {
	case "run":
		var tk *task.Task
		if tk, err = task.Load(j.TaskDir); err == nil {
			out, err = production.Run(ctx, childConfig(j, tk))
		}
	case "approve":
		out, err = production.Approve(j.Out)
	case "rollback":
		out, err = production.Rollback(j.Out, j.To)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if production.IsStopped(err) {
			fmt.Fprintf(os.Stderr, "stop-latency-ms %d\n", time.Since(stoppedAt).Milliseconds())
			return stoppedExit
		}
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func childConfig(j job, tk *task.Task) production.Config {
	return production.Config{Base: nano, Deployed: j.Deployed, Task: tk, Failures: j.Failures, ParentData: j.Parent,
		Out: j.Out, Epsilon: 2, Iterations: 1, Device: torch.CPU, HeldOut: 32, Probes: 8, Seed: 1, Manual: j.Manual,
		Recipe: finetune.Recipe{Epochs: 4, Batch: 8, LR: 5e-3, Seed: 1}}
}

// result is how a child ended.
type result struct {
	code   int // exit status; -1 when killed by a signal
	signal syscall.Signal
	stdout string
	stderr string
	wall   time.Duration
}

// start starts a child running j with extra environment variables.
func start(t *testing.T, j job, env ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	spec, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PIONEER_TEST_CHILD="+string(spec)), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

func wait(cmd *exec.Cmd, out, errb *bytes.Buffer, began time.Time) result {
	err := cmd.Wait()
	r := result{stdout: out.String(), stderr: errb.String(), wall: time.Since(began)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code, r.signal = -1, ws.Signal()
			return r
		}
		r.code = ee.ExitCode()
	}
	return r
}

func child(t *testing.T, j job, env ...string) result {
	t.Helper()
	began := time.Now()
	cmd, out, errb := start(t, j, env...)
	return wait(cmd, out, errb, began)
}

// copyTree copies a run folder (a crash's state, to try several things from it).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is one deployment shared by the tests in this file.
var fixture struct {
	once sync.Once
	dir  string // removed when the tests end
	job  job
	err  error
}

func sharedJob(t *testing.T) job {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "pioneer-reliability-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		tk, err := deployfixture.Task(filepath.Join(dir, "task"))
		if err != nil {
			fixture.err = err
			return
		}
		d, err := deployfixture.Deploy(tk, dir, false)
		if err != nil {
			fixture.err = err
			return
		}
		fixture.job = job{Command: "run", TaskDir: tk.Source(), Deployed: d.Deployed, Parent: d.Parent, Failures: d.Failures, Out: filepath.Join(dir, "run")}
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.job
}

// checkPromotedOnce checks a finished run folder: one version promoted over v0, named
// once in the lineage, current, with complete weights; sequence numbers in order.
func checkPromotedOnce(t *testing.T, out string) {
	t.Helper()
	events := readLines[lineage.Event](t, filepath.Join(out, "lineage.jsonl"))
	promoted, outcomes := 0, 0
	for i, e := range events {
		if e.Seq != i+1 {
			t.Fatalf("lineage line %d has sequence number %d", i+1, e.Seq)
		}
		switch e.Step {
		case "promoted":
			promoted++
			if !strings.Contains(string(e.Data), `"version":"v1"`) {
				t.Fatalf("promoted %s, want v1", e.Data)
			}
		case "outcome":
			outcomes++
		}
	}
	names, cur := versionsFolder(t, out)
	if promoted != 1 || outcomes != 1 || strings.Join(names, ",") != "CURRENT,v0,v1" || cur != "v1" {
		t.Fatalf("after recovery: %d promoted events, %d outcomes, versions/ %v, CURRENT %q", promoted, outcomes, names, cur)
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json", "meta.json", "eval_set.json"} {
		if _, err := os.Stat(filepath.Join(out, "versions", "v1", f)); err != nil {
			t.Fatalf("v1 lacks %s", f)
		}
	}
}

// versionsFolder lists a run folder's versions/ and reads its CURRENT.
func versionsFolder(t *testing.T, out string) (names []string, current string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, "versions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	cur, err := os.ReadFile(filepath.Join(out, "versions", "CURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	return names, strings.TrimSpace(string(cur))
}

// checkRegisteredOnce checks a run folder that registered its deployment: v0 only,
// complete, current, recorded once.
func checkRegisteredOnce(t *testing.T, out string) {
	t.Helper()
	n := 0
	for _, e := range readLines[lineage.Event](t, filepath.Join(out, "lineage.jsonl")) {
		if e.Step == "version_registered" {
			n++
		}
	}
	names, cur := versionsFolder(t, out)
	if n != 1 || strings.Join(names, ",") != "CURRENT,v0" || cur != "v0" {
		t.Fatalf("after recovery: %d registrations, versions/ %v, CURRENT %q", n, names, cur)
	}
	if _, err := os.Stat(filepath.Join(out, "versions", "v0", "adapter_model.safetensors")); err != nil {
		t.Fatal("v0 lacks its weights")
	}
}

// TestKillAtEveryPromotionStep: a run killed (SIGKILL) at each step of registering v0
// and of promoting v1 is run again; it recovers to one promotion (v1, complete,
// current, recorded once) whichever step it was killed at.
func TestKillAtEveryPromotionStep(t *testing.T) {
	j := sharedJob(t)
	base := t.TempDir()
	points := []string{"versions:copied", "versions:added", "versions:current", // v0
		"versions:copied", "versions:added", "versions:current", "promote:recorded", "outcome:written"} // v1
	prev := ""
	for i, point := range points {
		state := filepath.Join(base, fmt.Sprintf("state%d", i))
		if prev != "" {
			copyTree(t, prev, state)
		}
		k := j
		k.Out = state
		r := child(t, k, "PIONEER_CRASH_AT="+point)
		if r.signal != syscall.SIGKILL {
			t.Fatalf("step %d (%s): the run was not killed there (exit %d): %s", i, point, r.code, r.stderr)
		}
		// From the crash state, a rerun recovers: for v0's steps it registers v0 once
		// (stopped right after, at the first triage line: the rest is the later steps'),
		// for v1's it finishes with one promotion.
		again := filepath.Join(base, fmt.Sprintf("recovered%d", i))
		copyTree(t, state, again)
		k.Out = again
		if i < 3 {
			if r := child(t, k, "PIONEER_SIGNAL_AT=triage:lines"); r.code != stoppedExit {
				t.Fatalf("rerun after a kill at %s (v0): exit %d: %s", point, r.code, r.stderr)
			}
			checkRegisteredOnce(t, again)
		} else {
			if r := child(t, k); r.code != 0 {
				t.Fatalf("rerun after a kill at %s: exit %d: %s", point, r.code, r.stderr)
			}
			checkPromotedOnce(t, again)
		}
		prev = state
	}
}

// TestConcurrentCommandsOnOneRunFolder: a second command on a run folder another holds
// is refused, naming the holder, while the first finishes as if alone; two approvals at
// once promote once; two rollbacks at once leave one consistent state.
func TestConcurrentCommandsOnOneRunFolder(t *testing.T) {
	j := sharedJob(t)
	j.Out = filepath.Join(t.TempDir(), "run")
	began := time.Now()
	first, out1, err1 := start(t, j)
	for { // wait for the first to hold the folder
		if _, err := os.Stat(filepath.Join(j.Out, "lineage.jsonl")); err == nil {
			break
		}
		if time.Since(began) > time.Minute {
			first.Process.Kill()
			t.Fatal("the first run never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := child(t, j)
	if second.code == 0 || !strings.Contains(second.stderr, fmt.Sprintf("PID %d", first.Process.Pid)) {
		first.Process.Kill()
		t.Fatalf("second run on a held folder: exit %d: %s", second.code, second.stderr)
	}
	if r := wait(first, out1, err1, began); r.code != 0 {
		t.Fatalf("first run: exit %d: %s", r.code, r.stderr)
	}
	checkPromotedOnce(t, j.Out)

	// Two approvals of one waiting candidate, at once, three times over.
	m := j
	m.Manual, m.Out = true, filepath.Join(t.TempDir(), "manual")
	if r := child(t, m); r.code != 0 || !strings.Contains(r.stdout, `"awaiting_approval"`) {
		t.Fatalf("manual run: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	for trial := range 3 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("approve%d", trial))
		copyTree(t, m.Out, dir)
		a := job{Command: "approve", Out: dir}
		c1, o1, e1 := start(t, a)
		c2, o2, e2 := start(t, a)
		r1, r2 := wait(c1, o1, e1, began), wait(c2, o2, e2, began)
		if (r1.code == 0) == (r2.code == 0) {
			t.Fatalf("trial %d: approvals ended %d and %d (%s | %s); want exactly one to succeed", trial, r1.code, r2.code, r1.stderr, r2.stderr)
		}
		loser := r2
		if r2.code == 0 {
			loser = r1
		}
		if !strings.Contains(loser.stderr, "in use") && !strings.Contains(loser.stderr, "nothing awaits approval") {
			t.Fatalf("trial %d: the refused approval says %q", trial, loser.stderr)
		}
		_, cur := versionsFolder(t, dir)
		if _, err := os.Stat(filepath.Join(dir, "versions", "v1", "adapter_model.safetensors")); cur != "v1" || err != nil {
			t.Fatalf("trial %d: CURRENT %q, v1 weights %v", trial, cur, err)
		}
	}
	// Two rollbacks at once: one wins, the lineage records what CURRENT says.
	dir := filepath.Join(t.TempDir(), "rollback")
	copyTree(t, j.Out, dir)
	c1, o1, e1 := start(t, job{Command: "rollback", Out: dir, To: "v0"})
	c2, o2, e2 := start(t, job{Command: "rollback", Out: dir, To: "v1"})
	wait(c1, o1, e1, began)
	wait(c2, o2, e2, began)
	events := readLines[lineage.Event](t, filepath.Join(dir, "lineage.jsonl"))
	_, cur := versionsFolder(t, dir)
	last := ""
	for i, e := range events {
		if e.Seq != i+1 {
			t.Fatalf("rollbacks at once: line %d has sequence number %d", i+1, e.Seq)
		}
		if e.Step == "rollback" {
			var rb struct{ To string }
			if err := json.Unmarshal(e.Data, &rb); err != nil {
				t.Fatal(err)
			}
			last = rb.To
		}
	}
	if last == "" || cur != last {
		t.Fatalf("rollbacks at once: CURRENT %q, the lineage's last rollback to %q", cur, last)
	}
}

// TestStopRequestsAtEveryStage: SIGTERM while triaging, scoring the deployment, probing,
// training or scoring a candidate stops the run within seconds, before any promotion and
// with nothing decided; the same command then finishes it.
func TestStopRequestsAtEveryStage(t *testing.T) {
	j := sharedJob(t)
	for i, point := range []string{"triage:lines", "baseline:scoring", "diagnosis:probes", "candidate:training", "candidate:scoring"} {
		k := j
		k.Out = filepath.Join(t.TempDir(), "run")
		r := child(t, k, "PIONEER_SIGNAL_AT="+point)
		if r.code != stoppedExit {
			t.Fatalf("%s: exit %d (want %d, stopped): %s", point, r.code, stoppedExit, r.stderr)
		}
		var ms int
		if _, err := fmt.Sscanf(r.stderr[strings.LastIndex(r.stderr, "stop-latency-ms"):], "stop-latency-ms %d", &ms); err != nil || ms > 10_000 {
			t.Fatalf("%s: stopped %d ms after the signal (%v): %s", point, ms, err, r.stderr)
		}
		t.Logf("%s: stopped %d ms after SIGTERM", point, ms)
		if _, err := os.Stat(filepath.Join(k.Out, "outcome.json")); err == nil {
			t.Fatalf("%s: a stopped run wrote an outcome", point)
		}
		if _, err := os.Stat(filepath.Join(k.Out, "versions", "v1")); err == nil {
			t.Fatalf("%s: a stopped run promoted", point)
		}
		if i == 4 { // and the same command finishes what was stopped
			if r := child(t, k); r.code != 0 {
				t.Fatalf("after a stop at %s: exit %d: %s", point, r.code, r.stderr)
			}
			checkPromotedOnce(t, k.Out)
		}
	}
}
