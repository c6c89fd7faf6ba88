package production

import (
	"context"
	"fmt"
	"sort"

	"github.com/pioneer-ai/pioneer/internal/crash"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
)

// PatternKind is what kind of systematic error a pattern is.
type PatternKind string

// The kinds of pattern.
const (
	Confusion      PatternKind = "confusion"       // one label answered for another
	LabelErrors    PatternKind = "label_errors"    // a label's examples answered wrongly (generation: any error)
	FalseNegatives PatternKind = "false_negatives" // entities of a type missed
	FalsePositives PatternKind = "false_positives" // entities of a type invented
	Boundary       PatternKind = "boundary"        // an entity's span cut or overrun
	FormatErrors   PatternKind = "format"          // answers off the output format
)

// Pattern is a systematic error: a group of failures with one cause, and the evidence
// from fresh probes that the deployed model really makes it.
type Pattern struct {
	ID   string      `json:"id"`
	Kind PatternKind `json:"kind"`
	// Gold is the expected label (classification) or entity type (extraction);
	// Predicted the label the model gave instead (confusions).
	Gold      string   `json:"gold,omitempty"`
	Predicted string   `json:"predicted,omitempty"`
	Failures  []string `json:"failures"` // ids of the admitted failures it groups
	// Probes are fresh pool examples (not in the log, not in the parent's training data)
	// the deployed model was run on; ProbeErrors how many it got wrong in this pattern's way.
	Probes      int     `json:"probes"`
	ProbeErrors int     `json:"probe_errors"`
	ProbeRate   float64 `json:"probe_error_rate"`
	Confirmed   bool    `json:"confirmed"`
	Evidence    string  `json:"evidence"`
}

// Diagnosis is the summary diagnose writes: the patterns, and error counts per label or
// entity type over the admitted failures.
type Diagnosis struct {
	Patterns []*Pattern        `json:"patterns"`
	PerLabel map[string]int    `json:"failures_per_label,omitempty"`
	PerType  map[string][2]int `json:"entity_errors_per_type,omitempty"` // type -> [false negatives, false positives]
}

// groupFailures finds candidate patterns in the admitted failures.
func groupFailures(t *task.Task, fs []triage.Failure) *Diagnosis {
	d := &Diagnosis{}
	byID := map[string]*Pattern{}
	add := func(id string, kind PatternKind, gold, pred, failure string) {
		p := byID[id]
		if p == nil {
			p = &Pattern{ID: id, Kind: kind, Gold: gold, Predicted: pred}
			byID[id] = p
		}
		if len(p.Failures) == 0 || p.Failures[len(p.Failures)-1] != failure {
			p.Failures = append(p.Failures, failure)
		}
	}
	switch t.Type {
	case task.Classification:
		d.PerLabel = map[string]int{}
		for _, f := range fs {
			d.PerLabel[f.Label]++
			if !f.PredFormatOK {
				add("format", FormatErrors, "", "", f.ID)
				continue
			}
			add("confusion:"+f.Label+"->"+f.Predicted, Confusion, f.Label, f.Predicted, f.ID)
			add("errors:"+f.Label, LabelErrors, f.Label, "", f.ID)
		}
	case task.Extraction:
		d.PerType = map[string][2]int{}
		for _, f := range fs {
			if !f.PredFormatOK {
				add("format", FormatErrors, "", "", f.ID)
			}
			fn, fp, boundary := triage.EntityDiff(f.Entities, f.PredEntities)
			for _, e := range fn {
				c := d.PerType[e.Type]
				c[0]++
				d.PerType[e.Type] = c
				add("fn:"+e.Type, FalseNegatives, e.Type, "", f.ID)
			}
			for _, e := range fp {
				c := d.PerType[e.Type]
				c[1]++
				d.PerType[e.Type] = c
				add("fp:"+e.Type, FalsePositives, e.Type, "", f.ID)
			}
			for _, e := range boundary {
				add("boundary:"+e.Type, Boundary, e.Type, "", f.ID)
			}
		}
	default:
		for _, f := range fs {
			add("generation", LabelErrors, "", "", f.ID)
		}
	}
	for _, p := range byID {
		d.Patterns = append(d.Patterns, p)
	}
	sort.Slice(d.Patterns, func(i, j int) bool {
		if len(d.Patterns[i].Failures) != len(d.Patterns[j].Failures) {
			return len(d.Patterns[i].Failures) > len(d.Patterns[j].Failures)
		}
		return d.Patterns[i].ID < d.Patterns[j].ID
	})
	return d
}

// probeSet picks up to n pool examples that exercise a pattern.
func probeSet(t *task.Task, p *Pattern, pool []task.Example, usable func(int) bool, n int) []int {
	var out []int
	for i, ex := range pool {
		if len(out) >= n {
			break
		}
		if !usable(i) {
			continue
		}
		switch p.Kind {
		case Confusion, LabelErrors:
			if ex.Label == p.Gold {
				out = append(out, i)
			}
		case FalseNegatives, Boundary:
			for _, e := range ex.Entities {
				if e.Type == p.Gold {
					out = append(out, i)
					break
				}
			}
		case FalsePositives:
			has := false
			for _, e := range ex.Entities {
				has = has || e.Type == p.Gold
			}
			if !has {
				out = append(out, i)
			}
		default:
			out = append(out, i)
		}
	}
	return out
}

// judge counts how many probe predictions show the pattern and decides whether it is
// systematic: at least minRate of the probes, and at least one, go wrong its way.
func judge(p *Pattern, probes []task.Example, preds []task.Prediction, minRate float64) {
	p.Probes = len(probes)
	errs := 0
	for i, ex := range probes {
		pr := preds[i]
		switch p.Kind {
		case Confusion:
			if pr.Label == p.Predicted {
				errs++
			}
		case LabelErrors:
			if pr.Label != ex.Label {
				errs++
			}
		case FormatErrors:
			if !pr.FormatOK {
				errs++
			}
		case FalseNegatives, FalsePositives, Boundary:
			fn, fp, bd := triage.EntityDiff(ex.Entities, pr.Entities)
			list := map[PatternKind][]task.Entity{FalseNegatives: fn, FalsePositives: fp, Boundary: bd}[p.Kind]
			for _, e := range list {
				if e.Type == p.Gold {
					errs++
					break
				}
			}
		default:
			if !pr.Correct {
				errs++
			}
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
	idx := map[*Pattern][]int{}
	seen := map[int]int{}
	for _, p := range d.Patterns {
		for _, i := range probeSet(in.t, p, in.pool, tg.usable, in.cfg.Probes) {
			if _, ok := seen[i]; !ok {
				seen[i] = len(all)
				all = append(all, in.pool[i])
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
		preds := make([]task.Prediction, len(idx[p]))
		for k, j := range idx[p] {
			probes[k], preds[k] = all[j], res.Predictions[j]
		}
		judge(p, probes, preds, in.cfg.MinProbe)
	}
	return nil
}
