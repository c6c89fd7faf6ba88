package task

import (
	"fmt"
	"slices"
	"strings"
)

// kind is what makes a type of task: everything about it that differs from another
// type. A new task type is one value implementing kind (a file of its own, like
// classification.go) and one line in kinds; the rest of Task, and the agent, go through
// it.
type kind interface {
	// field is what the output template writes the answer as: "{label}".
	field() string
	// metrics are the metrics that may judge the type; the first is the default.
	metrics() []string
	// validate checks the task's own settings for the type (its labels, entity types).
	validate(t *Task) error
	// check says why an example's answer does not fit the task ("" when it does).
	check(t *Task, ex Example) string
	// answer is the text the output template's field takes for an example.
	answer(t *Task, ex Example) string
	// read is an answer's text (the template's prefix and suffix taken off) read back;
	// ok is false when it does not follow the type's format.
	read(t *Task, s string) (label string, entities []Entity, ok bool)
	// constrained says the model's answer is chosen among the labels by scoring each
	// (Predict returns a label), not generated.
	constrained() bool
	// score fills res (metric value and per-example predictions) for the model's
	// outputs against the examples.
	score(t *Task, outs []string, exs []Example, res *Result) error
	// balanced says Sample draws the examples balanced across the keys.
	balanced() bool
	// keys are what an example's answer involves that the agent groups by: its label,
	// its entities' types; nil for a free-form answer.
	keys(ex Example) []string
	// same says two examples have the same answer.
	same(a, b Example) bool
	// errors are the ways got went wrong against want (formatOK: got followed the
	// output format); exercises and shows are Task.Exercises and Task.Shows for
	// the kinds of error it names (format errors are common to all types).
	errors(want, got Example, formatOK bool) []Error
	exercises(e Error, ex Example) bool
	shows(e Error, ex Example, p Prediction) bool
}

// kinds are the task types.
var kinds = map[Type]kind{
	Classification: classification{},
	Extraction:     extraction{},
	Generation:     generation{},
}

// kindOf is the kind of a type; nil for an unknown one.
func kindOf(t Type) kind { return kinds[t] }

// Types lists the task types.
func Types() []Type {
	out := make([]Type, 0, len(kinds))
	for t := range kinds {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Keys are what an example's answer involves that the agent groups by: the label
// (classification), the entity types (extraction, each once, in order); nil for
// generation.
func (t *Task) Keys(ex Example) []string { return t.kind.keys(ex) }

// Same says two examples have the same answer: the label; the entities (types, and
// texts up to case, in any order); the output up to case and spacing.
func (t *Task) Same(a, b Example) bool { return t.kind.same(a, b) }

// Constrained says the model's answers are chosen among the task's labels (Predict
// returns a label) rather than generated.
func (t *Task) Constrained() bool { return t.kind.constrained() }

// ReadAnswer reads an answer written in the task's output format without the template
// around it ("weather"; "PER: Ann; LOC: Rome" or "none"; free text) into an example's
// answer fields (Label, Entities or Output, and Text left empty); it says why when the
// answer does not fit the task.
func (t *Task) ReadAnswer(answer string) (Example, string) {
	s := strings.TrimSpace(answer)
	if s == "" {
		return Example{}, "no answer"
	}
	label, entities, ok := t.kind.read(t, s)
	ex := Example{Label: label, Entities: entities, Output: answer}
	if !ok {
		return ex, fmt.Sprintf("%q is not in the task's output format (%s)", answer, t.formatHelp())
	}
	if why := t.kind.check(t, ex); why != "" {
		return ex, why
	}
	return ex, ""
}

// formatHelp says what the task's answers look like.
func (t *Task) formatHelp() string {
	switch {
	case len(t.Labels) > 0:
		return fmt.Sprintf("one of %d labels", len(t.Labels))
	case len(t.EntityTypes) > 0:
		return "TYPE: span; ... or none, types " + strings.Join(t.EntityTypes, ", ")
	}
	return "free text"
}
