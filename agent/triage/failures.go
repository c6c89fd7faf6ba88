package triage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
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
// dropped silently. A duplicate id, or the same input (up to case, spacing and Unicode
// form) with the same expected answer, is quarantined after its first line: a request
// logged a thousand times is one failure, not a thousand examples. A log with no usable
// line is an error.
func ReadFailures(t *task.Task, path string, lim Limits) ([]Failure, []Quarantined, error) {
	lim = lim.orDefaults()
	var out []Failure
	var bad []Quarantined
	seen := map[string]int{} // id -> its line
	same := map[string]int{} // normalised input and expected answer -> its first line
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
		norm, _ := text.Normalize(f.Input)
		key := strings.Join(strings.Fields(strings.ToLower(norm)), " ") + "\x00" + strings.TrimSpace(f.Expected)
		if first, dup := same[key]; dup {
			q("the same input and expected answer as line %d", first)
			return nil
		}
		same[key] = l.N
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
	want, why := t.ReadAnswer(f.Expected)
	if why != "" {
		return `"expected": ` + why
	}
	got, gotWhy := t.ReadAnswer(f.Output)
	f.Label, f.Entities = want.Label, want.Entities
	f.Predicted, f.PredEntities = got.Label, got.Entities
	f.PredFormatOK = gotWhy == "" // (generation reads any text: only an empty output is off)
	if gotWhy == "" && t.Same(want, got) {
		return "the model's output is the expected answer: not a failure"
	}
	return ""
}

// Example is the failure as a task example with its expected answer.
func (f Failure) Example() task.Example {
	return task.Example{ID: f.ID, Text: f.Input, Label: f.Label, Entities: f.Entities, Output: f.Expected}
}

// Answered is a logged answer its user marked right (a line of the traffic), as triage
// reads a line: the expected answer is the model's. Triage checks such a line's input
// (empty, injection, gibberish, off-domain) and its label like a failure's.
func Answered(t *task.Task, ex task.Example) Failure {
	return Failure{ID: ex.ID, Input: ex.Text, Output: t.Target(ex), Expected: t.Target(ex), Label: ex.Label, Entities: ex.Entities,
		Predicted: ex.Label, PredEntities: ex.Entities, PredFormatOK: true}
}
