package task

import (
	"errors"
	"fmt"
)

// classification: one label of a set per input; answers are chosen among the labels.
type classification struct{}

func (classification) field() string     { return "{label}" }
func (classification) metrics() []string { return []string{"accuracy"} }
func (classification) constrained() bool { return true }
func (classification) balanced() bool    { return true }

func (classification) validate(t *Task) error {
	if len(t.Labels) < 2 {
		return fmt.Errorf("a classification task needs at least two labels (labels or labels_file), got %d", len(t.Labels))
	}
	seen := map[string]bool{}
	for _, l := range t.Labels {
		if l == "" {
			return errors.New("a label is empty")
		}
		if seen[l] {
			return fmt.Errorf("label %q is listed twice", l)
		}
		seen[l] = true
	}
	return nil
}

func (classification) check(t *Task, ex Example) string {
	if ex.Label == "" {
		return `no "label"`
	}
	if !t.HasLabel(ex.Label) {
		return fmt.Sprintf("label %q is not one of the task's %d labels", ex.Label, len(t.Labels))
	}
	return ""
}

func (classification) answer(_ *Task, ex Example) string { return ex.Label }

func (classification) read(t *Task, s string) (string, []Entity, bool) { return s, nil, t.HasLabel(s) }

func (classification) same(a, b Example) bool { return a.Label == b.Label }

func (classification) keys(ex Example) []string {
	if ex.Label == "" {
		return nil
	}
	return []string{ex.Label}
}

// score is accuracy, with the confusions.
func (classification) score(t *Task, outs []string, exs []Example, res *Result) error {
	res.Confusion = map[string]map[string]int{}
	hits := 0
	for i, ex := range exs {
		got := outs[i]
		p := Prediction{ID: ex.ID, Output: got, Label: got, Correct: got == ex.Label, FormatOK: t.HasLabel(got)}
		if p.Correct {
			p.Score = 1
			hits++
		} else {
			if res.Confusion[ex.Label] == nil {
				res.Confusion[ex.Label] = map[string]int{}
			}
			res.Confusion[ex.Label][got]++
		}
		res.Predictions[i] = p
	}
	res.Value = float64(hits) / float64(len(exs))
	return nil
}

// errors: an answer off the label set is a format error; any other is a confusion of
// the two labels, summed up by the expected label's errors.
func (classification) errors(want, got Example, formatOK bool) []Error {
	if !formatOK {
		return []Error{{ID: "format", Kind: FormatErrors}}
	}
	return []Error{
		{ID: "confusion:" + want.Label + "->" + got.Label, Kind: Confusion, Gold: want.Label, Predicted: got.Label},
		{ID: "errors:" + want.Label, Kind: LabelErrors, Gold: want.Label, Summary: true},
	}
}

func (classification) exercises(e Error, ex Example) bool { return ex.Label == e.Gold }

func (classification) shows(e Error, ex Example, p Prediction) bool {
	if e.Kind == Confusion {
		return p.Label == e.Predicted
	}
	return p.Label != ex.Label
}
