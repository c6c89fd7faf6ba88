package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// races: two adapt commands on one run folder (the second must be refused, naming the
// first's PID, and the first finish as if alone); two approvals of one waiting candidate
// at once (one promotes, the other is refused); two rollbacks at once (CURRENT and the
// lineage agree, sequence numbers in order).
func (p *probes) races(trials int) error {
	for trial := range 3 {
		dir := filepath.Join(p.work, "races", fmt.Sprintf("adapt%d", trial))
		first, err := p.start(nil, append(append([]string(nil), p.adapt...), "--out", dir)...)
		if err != nil {
			return err
		}
		for i := 0; ; i++ { // until the first holds the folder
			if _, err := os.Stat(filepath.Join(dir, "lineage.jsonl")); err == nil {
				break
			}
			if i > 3000 {
				first.cmd.Process.Kill()
				return fmt.Errorf("the first adapt never started")
			}
			time.Sleep(20 * time.Millisecond)
		}
		second, err := p.adaptIn(dir, nil)
		if err != nil {
			return err
		}
		o := first.wait()
		why := promotedOnce(dir)
		p.check("concurrent_adapt", second.code == 1 && strings.Contains(second.stderr, fmt.Sprintf("PID %d", first.cmd.Process.Pid)) && o.code == 0 && why == "",
			"second adapt exit %d (%.200s); first exit %d; %s", second.code, second.stderr, o.code, why)
	}
	manual := filepath.Join(p.work, "races", "manual")
	if o, err := p.adaptIn(manual, nil, "--approve", "manual"); err != nil || o.code != 0 {
		return fmt.Errorf("manual run: %v %s", err, o.stderr)
	}
	for trial := range trials {
		dir := filepath.Join(p.work, "races", fmt.Sprintf("approve%d", trial))
		if err := copyTree(manual, dir); err != nil {
			return err
		}
		a, err := p.start(nil, "approve", dir)
		if err != nil {
			return err
		}
		b, err := p.start(nil, "approve", dir)
		if err != nil {
			return err
		}
		oa, ob := a.wait(), b.wait()
		list, cur, verr := versionsState(dir)
		won := 0
		for _, o := range []outcome{oa, ob} {
			if o.code == 0 {
				won++
			} else if !strings.Contains(o.stderr, "in use") && !strings.Contains(o.stderr, "nothing awaits approval") {
				won = -10 // refused for another reason
			}
		}
		p.check("concurrent_approve", won == 1 && verr == nil && slices.Equal(list, []string{"v0", "v1"}) && cur == "v1",
			"trial %d: %d approvals succeeded (%.150s | %.150s); versions %v current %q %v", trial, won, oa.stderr, ob.stderr, list, cur, verr)
	}
	promoted := filepath.Join(p.work, "races", "promoted")
	if o, err := p.adaptIn(promoted, nil); err != nil || o.code != 0 {
		return fmt.Errorf("adapt: %v %s", err, o.stderr)
	}
	for trial := range trials {
		dir := filepath.Join(p.work, "races", fmt.Sprintf("rollback%d", trial))
		if err := copyTree(promoted, dir); err != nil {
			return err
		}
		a, err := p.start(nil, "rollback", "--to", "v0", dir)
		if err != nil {
			return err
		}
		b, err := p.start(nil, "rollback", "--to", "v1", dir)
		if err != nil {
			return err
		}
		a.wait()
		b.wait()
		evs, err := events(dir)
		last := ""
		for _, e := range evs {
			if e.Step == "rollback" {
				var rb struct{ To string }
				if json.Unmarshal(e.Data, &rb) == nil {
					last = rb.To
				}
			}
		}
		_, cur, verr := versionsState(dir)
		p.check("concurrent_rollback", err == nil && verr == nil && last != "" && cur == last,
			"trial %d: lineage %v, last rollback to %q, CURRENT %q, %v", trial, err, last, cur, verr)
	}
	return nil
}

// signals: SIGTERM at each stage (the process signals itself at the point) and SIGINT
// from outside after a delay; the command must end within 10 s of the signal with nothing
// decided, and the same command must then finish with one promotion.
func (p *probes) signals() error {
	for _, point := range []string{"triage:lines", "baseline:scoring", "diagnosis:probes", "candidate:training", "candidate:scoring"} {
		dir := filepath.Join(p.work, "signals", strings.ReplaceAll(point, ":", "-"))
		o, err := p.adaptIn(dir, []string{"PIONEER_SIGNAL_AT=" + point})
		if err != nil {
			return err
		}
		_, decided := os.Stat(filepath.Join(dir, "outcome.json"))
		_, v1 := os.Stat(filepath.Join(dir, "versions", "v1"))
		p.check("stop_request", o.code == 1 && strings.Contains(o.stderr, "stopped before deciding") && decided != nil && v1 != nil,
			"SIGTERM at %s: exit %d, outcome written %v, v1 made %v: %.200s", point, o.code, decided == nil, v1 == nil, o.stderr)
		r, err := p.adaptIn(dir, nil)
		if err != nil {
			return err
		}
		why := promotedOnce(dir)
		p.check("stop_then_resume", r.code == 0 && why == "", "after SIGTERM at %s: exit %d, %s", point, r.code, why)
	}
	for _, after := range []time.Duration{2 * time.Second, 5 * time.Second, 8 * time.Second, 11 * time.Second} {
		dir := filepath.Join(p.work, "signals", fmt.Sprintf("sigint-%s", after))
		c, err := p.start(nil, append(append([]string(nil), p.adapt...), "--out", dir)...)
		if err != nil {
			return err
		}
		time.Sleep(after)
		sent := time.Now()
		c.cmd.Process.Signal(syscall.SIGINT)
		o := c.wait()
		latency := time.Since(sent)
		// The run may have finished before the signal: then there is nothing to stop.
		finished := o.code == 0
		_, v1 := os.Stat(filepath.Join(dir, "versions", "v1"))
		stopped := o.code == 1 && strings.Contains(o.stderr, "stopped before deciding") && v1 != nil
		p.check("sigint_from_outside", (finished || stopped) && latency < 10*time.Second,
			"SIGINT after %s: exit %d, ended %s after the signal: %.200s", after, o.code, latency.Round(time.Millisecond), o.stderr)
		r, err := p.adaptIn(dir, nil)
		if err != nil {
			return err
		}
		why := promotedOnce(dir)
		p.check("stop_then_resume", r.code == 0 && why == "", "after SIGINT at %s: exit %d, %s", after, r.code, why)
	}
	return nil
}
