package task

import "strings"

// ErrorKind is a kind of mistake a model makes on a task, as the agent groups failures
// into patterns (docs/DESIGN.md §6).
type ErrorKind string

// The kinds of mistake.
const (
	Confusion      ErrorKind = "confusion"       // one label answered for another
	LabelErrors    ErrorKind = "label_errors"    // a label's examples answered wrongly
	FalseNegatives ErrorKind = "false_negatives" // entities of a type missed
	FalsePositives ErrorKind = "false_positives" // entities of a type invented
	Boundary       ErrorKind = "boundary"        // an entity's span cut or overrun
	FormatErrors   ErrorKind = "format"          // answers off the output format
	WrongOutputs   ErrorKind = "wrong_outputs"   // a free-form answer other than the expected one
	MissingAnswer  ErrorKind = "missing_answer"  // a worked answer without a final answer
	WrongAnswer    ErrorKind = "wrong_answer"    // a worked answer's final answer not the expected one
	TooShort       ErrorKind = "too_short"       // a free-form answer cut short: under half the expected length
	TooLong        ErrorKind = "too_long"        // a free-form answer running on: over twice the expected length
)

// Error is one way an answer went wrong; its ID names the group of failures that share
// it ("confusion:weather->timer", "fn:PER").
type Error struct {
	ID        string
	Kind      ErrorKind
	Gold      string // the expected label or entity type it concerns
	Predicted string // the label answered instead (a confusion)
	// Summary marks a group that sums up more specific ones (a label's errors over its
	// confusions): evidence that the answer is weak, but no failure is trained on
	// through it.
	Summary bool
}

// Errors lists the ways got (the model's answer; formatOK whether it followed the
// output format) went wrong against want.
func (t *Task) Errors(want, got Example, formatOK bool) []Error {
	return t.kind.errors(want, got, formatOK)
}

// Exercises says an example can show the error, so that running the model on it tests
// whether the model makes the error systematically: an example of the label, one with
// an entity of the type (or, for invented entities, without).
func (t *Task) Exercises(e Error, ex Example) bool {
	if e.Kind == FormatErrors {
		return true
	}
	return t.kind.exercises(e, ex)
}

// Shows says the model's prediction p for ex makes the error.
func (t *Task) Shows(e Error, ex Example, p Prediction) bool {
	if e.Kind == FormatErrors {
		return !p.FormatOK
	}
	return t.kind.shows(e, ex, p)
}

// EntityDiff compares expected and predicted entities: expected ones not predicted
// (false negatives), predicted ones not expected (false positives), and of those, pairs
// of the same type whose texts overlap (boundary errors, reported once by expected).
// Texts compare up to case.
func EntityDiff(want, got []Entity) (fn, fp, boundary []Entity) {
	key := func(e Entity) string { return e.Type + "\x00" + strings.ToLower(e.Text) }
	unmatched := func(a, b []Entity) []Entity {
		left := map[string]int{}
		for _, e := range b {
			left[key(e)]++
		}
		var out []Entity
		for _, e := range a {
			if left[key(e)] > 0 {
				left[key(e)]--
				continue
			}
			out = append(out, e)
		}
		return out
	}
	fn, fp = unmatched(want, got), unmatched(got, want)
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
