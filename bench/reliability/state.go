package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pioneer-ai/pioneer/agent/lineage"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// outcome is how a pioneer process ended.
type outcome struct {
	code     int // exit status; -1 when a signal ended it
	signal   syscall.Signal
	stdout   string
	stderr   string
	wall     time.Duration
	maxRSSMB int64
}

// crashed says whether the process died of a Go runtime failure rather than an error.
func (o outcome) crashed() bool {
	return strings.Contains(o.stderr, "panic:") || strings.Contains(o.stderr, "fatal error:") || strings.Contains(o.stderr, "goroutine ")
}

type proc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	began    time.Time
}

// start starts `pioneer args...` with extra environment variables.
func (p *probes) start(env []string, args ...string) (*proc, error) {
	c := &proc{cmd: exec.Command(p.bin, args...), began: time.Now()}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.err
	return c, c.cmd.Start()
}

func (c *proc) wait() outcome {
	err := c.cmd.Wait()
	o := outcome{stdout: c.out.String(), stderr: c.err.String(), wall: time.Since(c.began)}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		o.maxRSSMB = ru.Maxrss / 1024
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code, o.signal = -1, ws.Signal()
			return o
		}
		o.code = ee.ExitCode()
	}
	return o
}

// pioneer runs `pioneer args...` to its end.
func (p *probes) pioneer(env []string, args ...string) (outcome, error) {
	c, err := p.start(env, args...)
	if err != nil {
		return outcome{}, err
	}
	return c.wait(), nil
}

// adaptIn runs pioneer adapt into a run folder, with more arguments.
func (p *probes) adaptIn(dir string, env []string, more ...string) (outcome, error) {
	return p.pioneer(env, append(append(append([]string(nil), p.adapt...), "--out", dir), more...)...)
}

// events reads a run folder's lineage, checking its sequence numbers.
func events(dir string) ([]lineage.Event, error) {
	var out []lineage.Event
	err := jsonl.ReadFile(filepath.Join(dir, "lineage.jsonl"), 0, func(l jsonl.Line) error {
		var e lineage.Event
		if err := json.Unmarshal(l.Bytes, &e); err != nil {
			return fmt.Errorf("line %d: %w", l.N, err)
		}
		if e.Seq != len(out)+1 {
			return fmt.Errorf("line %d has sequence number %d", l.N, e.Seq)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// versionsState is the versions a run folder holds, the current one, and whether every
// version verifies against its recorded checksums.
func versionsState(dir string) (list []string, cur string, err error) {
	vs, err := versions.Open(dir, false)
	if err != nil {
		return nil, "", err
	}
	if list, err = vs.List(); err != nil {
		return nil, "", err
	}
	for _, v := range list {
		if err := vs.Verify(v); err != nil {
			return list, "", err
		}
	}
	cur, err = vs.Current()
	return list, cur, err
}

// promotedOnce says what is wrong with a finished run folder ("" if nothing): it must
// hold v0 and v1, v1 current and verified, promoted (or approved) once in a lineage with
// one outcome.
func promotedOnce(dir string) string {
	evs, err := events(dir)
	if err != nil {
		return err.Error()
	}
	promoted, outcomes := 0, 0
	for _, e := range evs {
		switch e.Step {
		case "promoted", "approved":
			promoted++
			if !strings.Contains(string(e.Data), `"version":"v1"`) {
				return "promoted " + string(e.Data)
			}
		case "outcome":
			outcomes++
		}
	}
	list, cur, err := versionsState(dir)
	switch {
	case err != nil:
		return err.Error()
	case promoted != 1 || outcomes != 1:
		return fmt.Sprintf("%d promotions and %d outcomes in the lineage", promoted, outcomes)
	case !slices.Equal(list, []string{"v0", "v1"}) || cur != "v1":
		return fmt.Sprintf("versions %v, current %q", list, cur)
	}
	return ""
}

// registeredOnce says what is wrong with a run folder that has registered its deployment
// and no more.
func registeredOnce(dir string) string {
	evs, err := events(dir)
	if err != nil {
		return err.Error()
	}
	n := 0
	for _, e := range evs {
		if e.Step == "version_registered" {
			n++
		}
	}
	list, cur, err := versionsState(dir)
	if err != nil {
		return err.Error()
	}
	if n != 1 || !slices.Equal(list, []string{"v0"}) || cur != "v0" {
		return fmt.Sprintf("%d registrations, versions %v, current %q", n, list, cur)
	}
	return ""
}

// copyTree copies a run folder.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// kills: SIGKILL at every step of registering v0 and promoting v1 (each state kept for
// the next step, as successive crashes would leave it), and of approving by hand; from
// each, a rerun must recover to one registration, or one promotion.
func (p *probes) kills() error {
	points := []string{"versions:copied", "versions:added", "versions:current",
		"versions:copied", "versions:added", "versions:current", "promote:recorded", "outcome:written"}
	prev := ""
	for i, point := range points {
		state := filepath.Join(p.work, "kills", fmt.Sprintf("state%d", i))
		if prev != "" {
			if err := copyTree(prev, state); err != nil {
				return err
			}
		}
		o, err := p.adaptIn(state, []string{"PIONEER_CRASH_AT=" + point})
		if err != nil {
			return err
		}
		p.check("kill_promotion", o.signal == syscall.SIGKILL, "%s (step %d): not killed there (exit %d): %.300s", point, i, o.code, o.stderr)
		again := filepath.Join(p.work, "kills", fmt.Sprintf("recovered%d", i))
		if err := copyTree(state, again); err != nil {
			return err
		}
		if i < 3 { // v0's steps: recover and stop at the first triage line
			r, err := p.adaptIn(again, []string{"PIONEER_SIGNAL_AT=triage:lines"})
			if err != nil {
				return err
			}
			why := registeredOnce(again)
			p.check("kill_promotion", r.code == 1 && why == "", "rerun after a kill at %s: exit %d, %s", point, r.code, why)
		} else {
			r, err := p.adaptIn(again, nil)
			if err != nil {
				return err
			}
			why := promotedOnce(again)
			p.check("kill_promotion", r.code == 0 && why == "", "rerun after a kill at %s: exit %d, %s %.300s", point, r.code, why, r.stderr)
		}
		prev = state
	}
	// Approval by hand: a waiting candidate, then kills at each step of approving it.
	manual := filepath.Join(p.work, "kills", "manual")
	o, err := p.adaptIn(manual, nil, "--approve", "manual")
	if err != nil {
		return err
	}
	if o.code != 0 || !strings.Contains(o.stdout, "awaiting_approval") {
		return fmt.Errorf("manual run: exit %d: %s", o.code, o.stderr)
	}
	for i, point := range []string{"versions:copied", "versions:added", "versions:current", "approve:recorded"} {
		dir := filepath.Join(p.work, "kills", fmt.Sprintf("approve%d", i))
		if err := copyTree(manual, dir); err != nil {
			return err
		}
		k, err := p.pioneer([]string{"PIONEER_CRASH_AT=" + point}, "approve", dir)
		if err != nil {
			return err
		}
		p.check("kill_approval", k.signal == syscall.SIGKILL, "%s: not killed there (exit %d)", point, k.code)
		a, err := p.pioneer(nil, "approve", dir)
		if err != nil {
			return err
		}
		evs, err := events(dir)
		if err != nil {
			return err
		}
		approved := 0
		for _, e := range evs {
			if e.Step == "approved" {
				approved++
			}
		}
		list, cur, verr := versionsState(dir)
		_, pending := os.Stat(filepath.Join(dir, "pending.json"))
		ok := verr == nil && slices.Equal(list, []string{"v0", "v1"}) && cur == "v1" && approved == 1 && pending != nil
		// Killed after the lineage recorded the approval, the rerun finds nothing waiting:
		// an error, with the approval already done.
		p.check("kill_approval", ok && (a.code == 0 || (point == "approve:recorded" && strings.Contains(a.stderr, "nothing awaits"))),
			"approve after a kill at %s: exit %d (%.200s), versions %v current %q, %d approvals, %v", point, a.code, a.stderr, list, cur, approved, verr)
	}
	return nil
}
