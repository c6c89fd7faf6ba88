package triage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// Failure is one line of a failure log: an input the deployed model got wrong, what it
// answered and what was expected. Expected is written in the task's output format: a
// label (classification), "TYPE: span; TYPE: span" or "none" (extraction), the target
// text (generation).
type Failure struct {
	ID        string         `json:"id"`
	Input     string         `json:"input"`
	Output    string         `json:"output"`
	Expected  string         `json:"expected"`
	Timestamp string         `json:"timestamp,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	Line      int            `json:"line"`

	// Set by ReadFailures from Expected and Output.
	Label        string        `json:"-"` // expected label
	Predicted    string        `json:"-"` // the model's label (may be outside the set)
	Entities     []task.Entity `json:"-"` // expected entities
	PredEntities []task.Entity `json:"-"`
	PredFormatOK bool          `json:"-"` // the model's output followed the output format
}

// Quarantined is a log line that cannot be used, with why (and its raw bytes).
type Quarantined = jsonl.LineError

// Limits bound what reading a log may cost: each line is read with at most MaxLine bytes,
// an input longer than MaxInput bytes is quarantined (every check's cost grows with the
// input), and at most MaxLines lines are read (the rest of a longer log is reported, not
// read). Zero fields take the defaults.
type Limits struct {
	MaxLine  int // default 64 KiB
	MaxInput int // default 16 KiB
	MaxLines int // default 200,000
}

// DefaultLimits are the limits of a zero Limits.
var DefaultLimits = Limits{MaxLine: 64 << 10, MaxInput: 16 << 10, MaxLines: 200_000}

func (l Limits) orDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultLimits.MaxLine
	}
	if l.MaxInput <= 0 {
		l.MaxInput = DefaultLimits.MaxInput
	}
	if l.MaxLines <= 0 {
		l.MaxLines = DefaultLimits.MaxLines
	}
	return l
}

// errTooManyLines stops a read at Limits.MaxLines.
var errTooManyLines = errors.New("too many lines")

// ReadFailures reads a failure log, one bounded line at a time. Lines that do not parse
// or do not fit the task (no id or input field, an expected label outside the task's
// labels, an expected entity of an unknown type, a line or input over the limits) come
// back in quarantined with the line number, the reason and the raw line; nothing is
// dropped silently. Duplicate ids are quarantined after their first line. A log with no
// usable line is an error.
func ReadFailures(t *task.Task, path string, lim Limits) ([]Failure, []Quarantined, error) {
	lim = lim.orDefaults()
	var out []Failure
	var bad []Quarantined
	seen := map[string]int{}
	lines := 0
	err := jsonl.ReadFile(path, lim.MaxLine, func(l jsonl.Line) error {
		if lines++; lines > lim.MaxLines {
			bad = append(bad, Quarantined{Line: l.N, Reason: fmt.Sprintf("the log has more than %d lines; this line and those after it were not read", lim.MaxLines)})
			return errTooManyLines
		}
		q := func(format string, a ...any) { bad = append(bad, jsonl.Bad(l, format, a...)) }
		if l.TooLong {
			q("%s", l.TooLongReason(lim.MaxLine))
			return nil
		}
		var rec struct {
			Failure
			Input *string `json:"input"`
		}
		if err := json.Unmarshal(l.Bytes, &rec); err != nil {
			q("not a JSON object: %v", err)
			return nil
		}
		f := rec.Failure
		f.Line = l.N
		switch {
		case f.ID == "":
			q(`no "id"`)
			return nil
		case seen[f.ID] > 0:
			q("id %q already used on line %d", f.ID, seen[f.ID])
			return nil
		case rec.Input == nil:
			q(`no "input"`)
			return nil
		case len(*rec.Input) > lim.MaxInput:
			q("an input of %d bytes, longer than the %d bytes triage reads", len(*rec.Input), lim.MaxInput)
			return nil
		}
		f.Input = *rec.Input
		seen[f.ID] = l.N
		if reason := fit(t, &f); reason != "" {
			q("%s", reason)
			return nil
		}
		out = append(out, f)
		return nil
	})
	if err != nil && !errors.Is(err, errTooManyLines) {
		return nil, nil, err
	}
	if len(out) == 0 {
		if len(bad) == 0 {
			return nil, nil, fmt.Errorf("%s: empty failure log", path)
		}
		var first []string
		for _, b := range bad[:min(len(bad), 5)] {
			first = append(first, fmt.Sprintf("line %d: %s", b.Line, b.Reason))
		}
		return nil, bad, fmt.Errorf("%s: none of its %d lines is usable (%s)", path, len(bad), strings.Join(first, "; "))
	}
	return out, bad, nil
}

// fit parses Expected and Output for the task; it says why the line does not fit ("" if
// it does).
func fit(t *task.Task, f *Failure) string {
	switch t.Type {
	case task.Classification:
		f.Label = strings.TrimSpace(f.Expected)
		if f.Label == "" {
			return `no "expected" label`
		}
		if !t.HasLabel(f.Label) {
			return fmt.Sprintf("expected label %q is not one of the task's %d labels", f.Label, len(t.Labels))
		}
		f.Predicted = strings.TrimSpace(f.Output)
		f.PredFormatOK = t.HasLabel(f.Predicted)
		if f.Predicted == f.Label {
			return fmt.Sprintf("the model's output %q is the expected label: not a failure", f.Label)
		}
	case task.Extraction:
		if strings.TrimSpace(f.Expected) == "" {
			return `no "expected" entities (write "none" for a sentence without any)`
		}
		_, es, ok := t.ParseOutput(" " + strings.TrimSpace(f.Expected))
		if !ok {
			return fmt.Sprintf("expected %q is not in the task's entity format (TYPE: span; ..., types %s)", f.Expected, strings.Join(t.EntityTypes, ", "))
		}
		f.Entities = es
		_, f.PredEntities, f.PredFormatOK = t.ParseOutput(" " + strings.TrimSpace(f.Output))
		if fn, fp, _ := EntityDiff(f.Entities, f.PredEntities); f.PredFormatOK && len(fn)+len(fp) == 0 {
			return "the model's output has exactly the expected entities: not a failure"
		}
	default:
		if f.Expected == "" {
			return `no "expected" output`
		}
		f.PredFormatOK = true
	}
	return ""
}

// Example is the failure as a task example with its expected answer.
func (f Failure) Example() task.Example {
	return task.Example{ID: f.ID, Text: f.Input, Label: f.Label, Entities: f.Entities, Output: f.Expected}
}

// EntityDiff compares expected and predicted entities: expected ones not predicted
// (false negatives), predicted ones not expected (false positives), and of those, pairs
// of the same type whose texts overlap (boundary errors, reported once by expected).
func EntityDiff(want, got []task.Entity) (fn, fp, boundary []task.Entity) {
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
