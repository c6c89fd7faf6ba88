package production

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// Pattern is a systematic error: a group of failures with one cause, and the evidence
// from fresh probes that the deployed model really makes it.
type Pattern struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // confusion, label_errors, false_negatives, false_positives, boundary, format
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
func groupFailures(t *task.Task, fs []Failure) *Diagnosis {
	d := &Diagnosis{}
	byID := map[string]*Pattern{}
	add := func(id, kind, gold, pred, failure string) {
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
				add("format", "format", "", "", f.ID)
				continue
			}
			add("confusion:"+f.Label+"->"+f.Predicted, "confusion", f.Label, f.Predicted, f.ID)
			add("errors:"+f.Label, "label_errors", f.Label, "", f.ID)
		}
	case task.Extraction:
		d.PerType = map[string][2]int{}
		for _, f := range fs {
			if !f.PredFormatOK {
				add("format", "format", "", "", f.ID)
			}
			fn, fp, boundary := entityDiff(f.Entities, f.PredEntities)
			for _, e := range fn {
				c := d.PerType[e.Type]
				c[0]++
				d.PerType[e.Type] = c
				add("fn:"+e.Type, "false_negatives", e.Type, "", f.ID)
			}
			for _, e := range fp {
				c := d.PerType[e.Type]
				c[1]++
				d.PerType[e.Type] = c
				add("fp:"+e.Type, "false_positives", e.Type, "", f.ID)
			}
			for _, e := range boundary {
				add("boundary:"+e.Type, "boundary", e.Type, "", f.ID)
			}
		}
	default:
		for _, f := range fs {
			add("generation", "label_errors", "", "", f.ID)
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

// entityDiff compares expected and predicted entities: expected ones not predicted
// (false negatives), predicted ones not expected (false positives), and of those, pairs
// of the same type whose texts overlap (boundary errors, reported once by expected).
func entityDiff(want, got []task.Entity) (fn, fp, boundary []task.Entity) {
	key := func(e task.Entity) string { return e.Type + "\x00" + strings.ToLower(e.Text) }
	left := map[string]int{}
	for _, e := range got {
		left[key(e)]++
	}
	for _, e := range want {
		if left[key(e)] > 0 {
			left[key(e)]--
			continue
		}
		fn = append(fn, e)
	}
	right := map[string]int{}
	for _, e := range want {
		right[key(e)]++
	}
	for _, e := range got {
		if right[key(e)] > 0 {
			right[key(e)]--
			continue
		}
		fp = append(fp, e)
	}
	for _, a := range fn {
		for _, b := range fp {
			x, y := strings.ToLower(a.Text), strings.ToLower(b.Text)
			if a.Type == b.Type && (strings.Contains(x, y) || strings.Contains(y, x)) {
				boundary = append(boundary, a)
				break
			}
		}
	}
	return fn, fp, boundary
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
		case "confusion", "label_errors":
			if ex.Label == p.Gold {
				out = append(out, i)
			}
		case "false_negatives", "boundary":
			for _, e := range ex.Entities {
				if e.Type == p.Gold {
					out = append(out, i)
					break
				}
			}
		case "false_positives":
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
		case "confusion":
			if pr.Label == p.Predicted {
				errs++
			}
		case "label_errors":
			if pr.Label != ex.Label {
				errs++
			}
		case "format":
			if !pr.FormatOK {
				errs++
			}
		case "false_negatives", "false_positives", "boundary":
			fn, fp, bd := entityDiff(ex.Entities, pr.Entities)
			list := map[string][]task.Entity{"false_negatives": fn, "false_positives": fp, "boundary": bd}[p.Kind]
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
