package production

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
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

// Quarantined is a log line that cannot be used, with why.
type Quarantined struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Raw    string `json:"raw"`
}

// ReadFailures reads a failure log. Lines that do not parse or do not fit the task (no
// id or input field, an expected label outside the task's labels, an expected entity of
// an unknown type) come back in quarantined with the line number and the reason; nothing
// is dropped silently. Duplicate ids are quarantined after their first line.
func ReadFailures(t *task.Task, path string) ([]Failure, []Quarantined, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var out []Failure
	var bad []Quarantined
	seen := map[string]int{}
	for i, line := range bytes.Split(b, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		q := func(format string, a ...any) {
			bad = append(bad, Quarantined{Line: n, Reason: fmt.Sprintf(format, a...), Raw: string(line)})
		}
		var f Failure
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&f); err != nil {
			q("not a JSON object: %v", err)
			continue
		}
		f.Line = n
		switch {
		case f.ID == "":
			q(`no "id"`)
			continue
		case seen[f.ID] > 0:
			q("id %q already used on line %d", f.ID, seen[f.ID])
			continue
		}
		seen[f.ID] = n
		if reason := fit(t, &f); reason != "" {
			q("%s", reason)
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 && len(bad) == 0 {
		return nil, nil, fmt.Errorf("%s: empty failure log", path)
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
		if fn, fp, _ := entityDiff(f.Entities, f.PredEntities); f.PredFormatOK && len(fn)+len(fp) == 0 {
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
