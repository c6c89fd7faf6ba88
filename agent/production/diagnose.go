package production

import (
	"context"
	"fmt"
	"sort"

	"github.com/pioneer-ai/pioneer/internal/crash"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/agent/triage"
)

// Pattern is a systematic error: a group of failures with one cause, and the evidence
// from fresh probes that the deployed model really makes it.
type Pattern struct {
	ID   string         `json:"id"`
	Kind task.ErrorKind `json:"kind"`
	// Gold is the expected label (classification) or entity type (extraction);
	// Predicted the label the model gave instead (confusions).
	Gold      string `json:"gold,omitempty"`
	Predicted string `json:"predicted,omitempty"`
	// Summary: the pattern sums up more specific ones (a label's errors over its
	// confusions); no failure is trained on through it.
	Summary  bool     `json:"summary,omitempty"`
	Failures []string `json:"failures"` // ids of the admitted failures it groups
	// Probes are fresh pool examples (not in the log, not in the parent's training data)
	// the deployed model was run on; ProbeErrors how many it got wrong in this pattern's way.
	Probes      int     `json:"probes"`
	ProbeErrors int     `json:"probe_errors"`
	ProbeRate   float64 `json:"probe_error_rate"`
	// Missed are the pool indices of the probes that went wrong this pattern's way:
	// labelled examples the deployed model is known to fail, the first similar examples
	// a confirmed pattern's curriculum takes.
	Missed    []int  `json:"missed_probes,omitempty"`
	Confirmed bool   `json:"confirmed"`
	Evidence  string `json:"evidence"`
}

// Diagnosis is what diagnose writes: the candidate patterns, largest first.
type Diagnosis struct {
	Patterns []*Pattern `json:"patterns"`
}

// groupFailures finds candidate patterns in the admitted failures: one per way of going
// wrong the task's type names (task.Task.Errors).
func groupFailures(t *task.Task, fs []triage.Failure) *Diagnosis {
	d := &Diagnosis{}
	byID := map[string]*Pattern{}
	for _, f := range fs {
		got := task.Example{Label: f.Predicted, Entities: f.PredEntities, Output: f.Output}
		for _, e := range t.Errors(f.Example(), got, f.PredFormatOK) {
			p := byID[e.ID]
			if p == nil {
				p = &Pattern{ID: e.ID, Kind: e.Kind, Gold: e.Gold, Predicted: e.Predicted, Summary: e.Summary}
				byID[e.ID] = p
				d.Patterns = append(d.Patterns, p)
			}
			if len(p.Failures) == 0 || p.Failures[len(p.Failures)-1] != f.ID {
				p.Failures = append(p.Failures, f.ID)
			}
		}
	}
	sort.Slice(d.Patterns, func(i, j int) bool {
		if len(d.Patterns[i].Failures) != len(d.Patterns[j].Failures) {
			return len(d.Patterns[i].Failures) > len(d.Patterns[j].Failures)
		}
		return d.Patterns[i].ID < d.Patterns[j].ID
	})
	return d
}

// error is the pattern as the task's type names it.
func (p *Pattern) error() task.Error {
	return task.Error{ID: p.ID, Kind: p.Kind, Gold: p.Gold, Predicted: p.Predicted, Summary: p.Summary}
}

// probeSet picks up to n pool examples that can show a pattern: the first in the pool's
// order, or for a free-form answer's error (which any example can show) those most like
// the pattern's failures (near, given the pool's index and the failures' inputs).
func probeSet(t *task.Task, p *Pattern, pool []task.Example, usable func(int) bool, n int, ix *text.Index, near []string) []int {
	var out []int
	e := p.error()
	fits := func(i int) bool { return usable(i) && t.Exercises(e, pool[i]) }
	if freeForm(e.Kind) && ix != nil && len(near) > 0 {
		// Round-robin over the failures, each one's nearest fitting examples in turn.
		taken := map[int]bool{}
		lists := make([][]text.Hit, len(near))
		for k, in := range near {
			lists[k] = ix.Nearest(in, n, func(i int) bool { return !fits(i) })
		}
		for rank := 0; len(out) < n; rank++ {
			added := false
			for _, l := range lists {
				if rank < len(l) && len(out) < n && !taken[l[rank].I] {
					taken[l[rank].I] = true
					out = append(out, l[rank].I)
					added = true
				}
			}
			if !added && rank >= n {
				break
			}
		}
		return out
	}
	for i := range pool {
		if len(out) >= n {
			break
		}
		if fits(i) {
			out = append(out, i)
		}
	}
	return out
}

// freeForm says an error kind is a free-form answer's (generation), which any example
// can show.
func freeForm(k task.ErrorKind) bool {
	switch k {
	case task.WrongOutputs, task.MissingAnswer, task.WrongAnswer, task.TooShort, task.TooLong:
		return true
	}
	return false
}

// judge counts how many probe predictions show the pattern and decides whether it is
// systematic: at least minRate of the probes, and at least one, go wrong its way.
// at is each probe's pool index.
func judge(t *task.Task, p *Pattern, probes []task.Example, at []int, preds []task.Prediction, minRate float64) {
	p.Probes = len(probes)
	errs := 0
	e := p.error()
	p.Missed = nil
	for i, ex := range probes {
		if t.Shows(e, ex, preds[i]) {
			errs++
			p.Missed = append(p.Missed, at[i])
		}
	}
	p.ProbeErrors = errs
	if p.Probes > 0 {
		p.ProbeRate = float64(errs) / float64(p.Probes)
	}
	p.Confirmed = errs > 0 && p.ProbeRate >= minRate
	verdict := "not confirmed: treated as noise, not trained on"
	if p.Confirmed {
		verdict = "confirmed"
	}
	if p.Probes == 0 {
		verdict = "no fresh probes in the data pool: not confirmed"
	}
	p.Evidence = fmt.Sprintf("%d logged failures; deployed model wrong this way on %d of %d fresh probes (%.0f %%): %s",
		len(p.Failures), errs, p.Probes, 100*p.ProbeRate, verdict)
}

// confirm runs the deployed model on fresh probes for every candidate pattern.
func (in *inputs) confirm(ctx context.Context, d *Diagnosis, tg *triaged) error {
	var all []task.Example
	var poolAt []int // all[j] is in.pool[poolAt[j]]
	idx := map[*Pattern][]int{}
	seen := map[int]int{}
	inputs := map[string]string{} // failure id -> input
	for _, f := range tg.admitted {
		inputs[f.ID] = f.Input
	}
	var ix *text.Index // the pool's, for free-form errors' probes
	for _, p := range d.Patterns {
		var near []string
		if freeForm(p.Kind) {
			if ix == nil {
				texts := make([]string, len(in.pool))
				for i, ex := range in.pool {
					texts[i] = ex.Text
				}
				ix = text.NewIndex(texts)
			}
			for _, id := range p.Failures {
				near = append(near, inputs[id])
			}
		}
		for _, i := range probeSet(in.t, p, in.pool, tg.usable, in.cfg.Probes, ix, near) {
			if _, ok := seen[i]; !ok {
				seen[i] = len(all)
				all = append(all, in.pool[i])
				poolAt = append(poolAt, i)
			}
			idx[p] = append(idx[p], seen[i])
		}
	}
	var res *task.Result
	if len(all) > 0 {
		err := in.withDeployed(func() error {
			crash.Point("diagnosis:probes")
			var err error
			res, err = in.t.Evaluate(ctx, in.base.LM, in.base.Tokenizer, all, in.eopts)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, p := range d.Patterns {
		probes := make([]task.Example, len(idx[p]))
		at := make([]int, len(idx[p]))
		preds := make([]task.Prediction, len(idx[p]))
		for k, j := range idx[p] {
			probes[k], at[k], preds[k] = all[j], poolAt[j], res.Predictions[j]
		}
		judge(in.t, p, probes, at, preds, in.cfg.MinProbe)
	}
	return nil
}
