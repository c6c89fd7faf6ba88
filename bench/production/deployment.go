package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench/judge"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// deployment is the data the benchmark builds.
type deployment struct {
	taskDir, parentPath  string
	parent, traffic, r   []task.Example
	describe, parentNote string
	poisonNote           string
}

// build writes the derived task (its train split is the agent's data pool: the training
// examples neither the parent nor the traffic used) and picks parent and traffic.
func build(src *task.Task, su setup, work string) (*deployment, error) {
	d := &deployment{taskDir: filepath.Join(work, "task")}
	r := rand.New(rand.NewPCG(seed, 2))
	train, val, test, err := src.Splits()
	if err != nil {
		return nil, err
	}
	labels := src.Labels
	keep := func(task.Example) bool { return true }
	var pool []task.Example
	if src.Type == task.Classification {
		perm := r.Perm(len(src.Labels))
		labels = nil
		for _, i := range perm[:su.labels] {
			labels = append(labels, src.Labels[i])
		}
		sort.Strings(labels)
		in := map[string]bool{}
		for _, l := range labels {
			in[l] = true
		}
		keep = func(ex task.Example) bool { return in[ex.Label] }
		thin := map[string]bool{}
		for i, l := range labels {
			if float64(i%10) < su.thinShare*10 {
				thin[l] = true
			}
		}
		byLabel := map[string][]task.Example{}
		for _, i := range r.Perm(len(train)) {
			if ex := train[i]; in[ex.Label] {
				byLabel[ex.Label] = append(byLabel[ex.Label], ex)
			}
		}
		for _, l := range labels {
			exs := byLabel[l]
			if len(exs) < su.parentPer+su.trafficPer {
				return nil, fmt.Errorf("intent %q has %d training examples, fewer than the %d parent and %d traffic examples the setup takes per intent",
					l, len(exs), su.parentPer, su.trafficPer)
			}
			n := su.parentPer
			if thin[l] {
				n = su.thinPer
			}
			d.parent = append(d.parent, exs[:n]...)
			d.traffic = append(d.traffic, exs[su.parentPer:su.parentPer+su.trafficPer]...)
			pool = append(pool, exs[su.parentPer+su.trafficPer:]...)
		}
		d.describe = fmt.Sprintf("%d of %s's %d intents drawn with seed %d", len(labels), src.Name, len(src.Labels), seed)
		d.parentNote = fmt.Sprintf("%d per intent, %d for %d thin intents", su.parentPer, su.thinPer, len(thin))
		d.poisonNote = "expected label replaced by another intent"
	} else {
		perm := r.Perm(len(train))
		// Skew: the parent sees sentences with MISC or ORG entities only a quarter as often.
		for _, i := range perm {
			ex := train[i]
			rare := false
			for _, e := range ex.Entities {
				rare = rare || e.Type == "MISC" || e.Type == "ORG"
			}
			switch {
			case len(d.parent) < su.parentN && (!rare || r.IntN(4) == 0):
				d.parent = append(d.parent, ex)
			case len(d.traffic) < su.trafficN && len(ex.Entities) > 0:
				d.traffic = append(d.traffic, ex)
			default:
				pool = append(pool, ex)
			}
		}
		d.describe = "CoNLL-2003 English"
		d.parentNote = "sentences with MISC or ORG entities kept with probability 1/4"
		d.poisonNote = "one expected entity's type replaced by another type"
	}
	var vs, ts []task.Example
	for _, ex := range val {
		if keep(ex) {
			vs = append(vs, ex)
		}
	}
	for _, ex := range test {
		if keep(ex) {
			ts = append(ts, ex)
		}
	}
	if err := os.MkdirAll(d.taskDir, 0o755); err != nil {
		return nil, err
	}
	for name, exs := range map[string][]task.Example{"train.jsonl": pool, "validation.jsonl": vs, "test.jsonl": ts} {
		if err := fsutil.WriteJSONL(filepath.Join(d.taskDir, name), exs); err != nil {
			return nil, err
		}
	}
	d.parentPath = filepath.Join(work, "parent.jsonl")
	if err := fsutil.WriteJSONL(d.parentPath, d.parent); err != nil {
		return nil, err
	}
	y := fmt.Sprintf("name: %s-bench\ntype: %s\nprompt: %q\noutput: %q\nmetric: %s\ndata: {train: train.jsonl, validation: validation.jsonl, test: test.jsonl}\n",
		src.Name, src.Type, src.Prompt, src.Output, src.Metric)
	// Names are written as quoted strings: a label may hold YAML's own characters
	// (Banking77's "reverted_card_payment?").
	quoted := func(ns []string) string {
		qs := make([]string, len(ns))
		for i, n := range ns {
			qs[i] = strconv.Quote(n)
		}
		return "[" + strings.Join(qs, ", ") + "]"
	}
	if src.Type == task.Classification {
		y += "labels: " + quoted(labels) + "\n"
	} else {
		y += "entity_types: " + quoted(src.EntityTypes) + "\n"
	}
	return d, os.WriteFile(filepath.Join(d.taskDir, "task.yaml"), []byte(y), 0o644)
}

// logLine is a failure-log line with the example it logs (poisoned or not).
type logLine struct {
	judge.FailureLine
	example task.Example
}

// failureLog turns the deployed model's mistakes on the traffic into a failure log and
// poisons a fraction of it; it returns the log, the poisoned ids and R.
func failureLog(t *task.Task, traffic []task.Example, res *task.Result, poison float64) ([]logLine, map[string]bool, []task.Example) {
	fails, wrong, r := judge.Split(t, traffic, res)
	log := make([]logLine, len(fails))
	for i, f := range fails {
		f.ID = "log-" + f.ID
		log[i] = logLine{FailureLine: f, example: wrong[i]}
	}
	rng := rand.New(rand.NewPCG(seed+2, 4))
	planted := map[string]bool{}
	n := int(float64(len(log))*poison + 0.5)
	for _, i := range rng.Perm(len(log))[:n] {
		l := &log[i]
		ex := l.example
		switch t.Type {
		case task.Classification:
			other := t.Labels[rng.IntN(len(t.Labels))]
			for other == ex.Label {
				other = t.Labels[rng.IntN(len(t.Labels))]
			}
			ex.Label = other
		case task.Extraction:
			if len(ex.Entities) == 0 {
				continue
			}
			es := append([]task.Entity(nil), ex.Entities...)
			k := rng.IntN(len(es))
			other := t.EntityTypes[rng.IntN(len(t.EntityTypes))]
			for other == es[k].Type {
				other = t.EntityTypes[rng.IntN(len(t.EntityTypes))]
			}
			es[k].Type = other
			ex.Entities = es
		}
		l.example = ex
		l.Expected = strings.TrimSpace(t.Target(ex))
		planted[l.ID] = true
	}
	return log, planted, r
}
