// Package task is the task definition the whole agent shares: what kind of task it is
// (classification over a label set, entity extraction over entity types, free
// generation), how an example becomes a prompt and a target completion, how a model's
// output is read back, which metric judges it, and where its data splits are.
//
// A task is a YAML file (task.yaml) beside its data:
//
//	name: banking77
//	type: classification        # classification | extraction | generation
//	description: ...
//	labels_file: labels.txt     # or labels: [a, b, ...]
//	prompt: "{text}\nintent:"   # {text} is the example's input
//	output: " {label}"          # the target; {label}, {entities} or {output}
//	metric: accuracy            # accuracy | entity_f1 | exact_match | rouge_l | final_answer
//	max_new_tokens: 256         # optional: a generated answer's budget (default 64)
//	data: {train: train.jsonl, validation: validation.jsonl, test: test.jsonl}
//
// Examples are JSONL lines with an "id" and "text", plus "label" (classification),
// "entities": [{"type", "text"}] (extraction) or "output" (generation). Extraction
// targets are written "TYPE: span; TYPE: span" in order of appearance, or "none".
package task

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/metrics"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// Type is the kind of task.
type Type string

// The task types.
const (
	Classification Type = "classification"
	Extraction     Type = "extraction"
	Generation     Type = "generation"
)

// Task is a loaded task definition.
type Task struct {
	Name        string   `yaml:"name"`
	Type        Type     `yaml:"type"`
	Description string   `yaml:"description"`
	Labels      []string `yaml:"labels"`
	LabelsFile  string   `yaml:"labels_file"`
	EntityTypes []string `yaml:"entity_types"`
	Prompt      string   `yaml:"prompt"`
	Output      string   `yaml:"output"`
	Metric      string   `yaml:"metric"`
	// MaxNewTokens is the budget of a generated answer (extraction, generation) in tokens
	// where an evaluation sets none; 0: EvalOptions' default (64).
	MaxNewTokens int `yaml:"max_new_tokens"`
	// MultiLine: a generated answer runs to the end-of-sequence token, not the first
	// newline (code); generation tasks only.
	MultiLine bool `yaml:"multiline"`
	Data      struct {
		Train      string `yaml:"train"`
		Validation string `yaml:"validation"`
		Test       string `yaml:"test"`
	} `yaml:"data"`

	fsys   fs.FS  // where the task file and its data live
	dir    string // the task's folder within fsys
	source string // what Load was given, for messages
	kind   kind   // what the type does (kind.go)
}

// Entity is a typed span of an extraction example.
type Entity = metrics.Entity

// Example is one record of a task's data.
type Example struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Label    string   `json:"label,omitempty"`
	Entities []Entity `json:"entities,omitempty"`
	Output   string   `json:"output,omitempty"`
	// Tests are what a generated program must pass (metric pass_at_1): Python
	// statements, MBPP's asserts, run after it in internal/sandbox.
	Tests []string `json:"tests,omitempty"`
	Line  int      `json:"-"` // 1-based line in its file
}

// Bundled lists the tasks embedded in the binary.
func Bundled() []string { return data.BundledTasks() }

// Load reads a task: a path to a task YAML file, a folder holding task.yaml, or the name
// of a bundled task (Bundled).
func Load(ref string) (*Task, error) {
	var (
		fsys fs.FS
		file string
	)
	st, err := os.Stat(ref)
	switch {
	case err == nil && st.IsDir():
		fsys, file = confined(ref), "task.yaml"
	case err == nil:
		fsys, file = confined(filepath.Dir(ref)), filepath.Base(ref)
	case slices.Contains(Bundled(), ref):
		fsys, file = data.Tasks, path.Join("tasks", ref, "task.yaml")
	default:
		return nil, fmt.Errorf("task %q: no such file or folder, and no bundled task of that name (bundled: %s)", ref, strings.Join(Bundled(), ", "))
	}
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", ref, err)
	}
	t := &Task{fsys: fsys, dir: path.Dir(file), source: ref}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(t); err != nil {
		return nil, fmt.Errorf("task %s: %w", ref, err)
	}
	if t.LabelsFile != "" {
		lb, err := fs.ReadFile(fsys, path.Join(t.dir, t.LabelsFile))
		if err != nil {
			return nil, fmt.Errorf("task %s: labels_file: %w", ref, err)
		}
		for _, l := range strings.Split(string(lb), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				t.Labels = append(t.Labels, l)
			}
		}
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("task %s: %w", ref, err)
	}
	return t, nil
}

// confined is the files of a task folder: no file may resolve outside it (a symbolic
// link out of the folder, a "../" in a path of task.yaml's), so that a task can only
// read its own data.
type confined string

// Open opens a file of the folder through os.Root, which refuses paths and links that
// leave it.
func (c confined) Open(name string) (fs.File, error) {
	root, err := os.OpenRoot(string(c))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w (task files must be inside the task's folder %s)", err, string(c))
	}
	return f, nil
}

func (t *Task) validate() error {
	if t.Name == "" {
		return errors.New("no name")
	}
	if t.kind = kindOf(t.Type); t.kind == nil {
		names := make([]string, 0, len(kinds))
		for _, k := range Types() {
			names = append(names, string(k))
		}
		return fmt.Errorf("type %q is not one of %s", t.Type, strings.Join(names, ", "))
	}
	allowed := t.kind.metrics()
	if t.Metric == "" {
		t.Metric = allowed[0]
	}
	if !slices.Contains(allowed, t.Metric) {
		return fmt.Errorf("metric %q does not fit a %s task (use %s)", t.Metric, t.Type, strings.Join(allowed, " or "))
	}
	if !strings.Contains(t.Prompt, "{text}") {
		return errors.New(`prompt must contain {text}`)
	}
	if t.MaxNewTokens < 0 || t.MaxNewTokens > 4096 {
		return fmt.Errorf("max_new_tokens must be between 1 and 4096 (0: 64), got %d", t.MaxNewTokens)
	}
	if t.MultiLine && t.Type != Generation {
		return fmt.Errorf("multiline is for generation tasks, not %s", t.Type)
	}
	field := t.kind.field()
	if t.Output == "" {
		t.Output = " " + field
	}
	if !strings.Contains(t.Output, field) {
		return fmt.Errorf("output must contain %s for a %s task", field, t.Type)
	}
	return t.kind.validate(t)
}

// New makes a task from its parts, without files (no data splits): for evaluating
// completions against references by a task's metric. prompt and output default to
// "{text}" and the output field alone ("{label}", "{entities}", "{output}"); metric to the
// type's first.
func New(name string, typ Type, labels, entityTypes []string, metric string) (*Task, error) {
	t := &Task{Name: name, Type: typ, Labels: labels, EntityTypes: entityTypes, Metric: metric, Prompt: "{text}", source: name}
	if k := kindOf(typ); k != nil {
		t.Output = k.field()
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("task %s: %w", name, err)
	}
	return t, nil
}

// Fingerprint identifies the task's definition and data: a hash of its settings and of
// each data split's bytes.
func (t *Task) Fingerprint() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %q\n", t.Name, t.Type, t.Labels, t.EntityTypes, t.Prompt, t.Output, t.Metric)
	if t.MaxNewTokens > 0 { // (absent, the fingerprints of tasks from before the setting stay)
		fmt.Fprintf(h, "max_new_tokens %d\n", t.MaxNewTokens)
	}
	if t.MultiLine {
		h.Write([]byte("multiline\n"))
	}
	for _, f := range []string{t.Data.Train, t.Data.Validation, t.Data.Test} {
		if f == "" {
			h.Write([]byte("-\n"))
			continue
		}
		b, err := fs.ReadFile(t.fsys, path.Join(t.dir, f))
		if err != nil {
			return "", fmt.Errorf("task %s: %w", t.Name, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%s %x\n", f, sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Source is what the task was loaded from.
func (t *Task) Source() string { return t.source }

// HasLabel reports whether label is in the task's label set.
func (t *Task) HasLabel(label string) bool { return slices.Contains(t.Labels, label) }

// LabelLike is the task's label that s names up to case and spacing (the last such, if
// several do); ok is false when none does.
func (t *Task) LabelLike(s string) (label string, ok bool) {
	want := metrics.Normalize(s)
	for _, l := range t.Labels {
		if metrics.Normalize(l) == want {
			label, ok = l, true
		}
	}
	return label, ok
}

// HasEntityType reports whether typ is one of the task's entity types.
func (t *Task) HasEntityType(typ string) bool { return slices.Contains(t.EntityTypes, typ) }

// Split reads one of the task's data splits: "train", "validation" or "test".
func (t *Task) Split(name string) ([]Example, error) {
	file := map[string]string{"train": t.Data.Train, "validation": t.Data.Validation, "test": t.Data.Test}[name]
	if file == "" {
		return nil, fmt.Errorf("task %s has no %s split", t.Name, name)
	}
	b, err := fs.ReadFile(t.fsys, path.Join(t.dir, file))
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	exs, bad, err := t.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("task %s: %s: %w", t.Name, file, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("task %s: %s: %v", t.Name, file, bad[0])
	}
	return exs, nil
}

// Splits reads the train, validation and test splits.
func (t *Task) Splits() (train, val, test []Example, err error) {
	if train, err = t.Split("train"); err != nil {
		return nil, nil, nil, err
	}
	if val, err = t.Split("validation"); err != nil {
		return nil, nil, nil, err
	}
	if test, err = t.Split("test"); err != nil {
		return nil, nil, nil, err
	}
	return train, val, test, nil
}

// LineError is a line of a JSONL file that does not parse or does not fit the task.
type LineError = jsonl.LineError

// ReadFile reads a JSONL file of examples (see Read).
func (t *Task) ReadFile(p string) ([]Example, []LineError, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	exs, bad, err := t.Read(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return exs, bad, nil
}

// Parse reads JSONL examples from b (see Read).
func (t *Task) Parse(b []byte) (exs []Example, bad []LineError, err error) {
	return t.Read(bytes.NewReader(b))
}

// Read reads JSONL examples, a line at a time. Lines that do not parse or do not fit the
// task (a label outside the set, an unknown entity type, a missing field, a line longer
// than jsonl.DefaultMaxLine) come back in bad with their line numbers; blank lines are
// ignored. It fails only when no line is usable or the reader fails.
func (t *Task) Read(r io.Reader) (exs []Example, bad []LineError, err error) {
	err = jsonl.Read(r, 0, func(l jsonl.Line) error {
		if l.TooLong {
			bad = append(bad, jsonl.Bad(l, "%s", l.TooLongReason(jsonl.DefaultMaxLine)))
			return nil
		}
		var ex Example
		if err := json.Unmarshal(l.Bytes, &ex); err != nil {
			bad = append(bad, jsonl.Bad(l, "not a JSON object: %v", err))
			return nil
		}
		ex.Line = l.N
		if reason := t.Check(ex); reason != "" {
			bad = append(bad, jsonl.Bad(l, "%s", reason))
			return nil
		}
		if ex.ID == "" {
			ex.ID = fmt.Sprintf("line-%d", l.N)
		}
		exs = append(exs, ex)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(exs) == 0 {
		if len(bad) > 0 {
			return nil, bad, fmt.Errorf("no usable example (%d bad lines; first: %v)", len(bad), bad[0])
		}
		return nil, nil, errors.New("no examples")
	}
	return exs, bad, nil
}

// Check says why an example does not fit the task ("" when it does).
func (t *Task) Check(ex Example) string {
	if strings.TrimSpace(ex.Text) == "" {
		return `empty "text"`
	}
	return t.kind.check(t, ex)
}

// PromptText is the prompt of an example.
func (t *Task) PromptText(text string) string { return strings.ReplaceAll(t.Prompt, "{text}", text) }

// TextOf is PromptText undone: the input a prompt was made from, and false when the
// prompt is not the task's template filled once (a request to a served model that did
// not come from this task).
func (t *Task) TextOf(prompt string) (string, bool) {
	pre, post, ok := strings.Cut(t.Prompt, "{text}")
	if !ok || strings.Contains(post, "{text}") || len(prompt) < len(pre)+len(post) ||
		!strings.HasPrefix(prompt, pre) || !strings.HasSuffix(prompt, post) {
		return "", false
	}
	return prompt[len(pre) : len(prompt)-len(post)], true
}

// Target is the completion a model should write for an example.
func (t *Task) Target(ex Example) string {
	return strings.ReplaceAll(t.Output, t.kind.field(), t.kind.answer(t, ex))
}

// LabelTarget is the completion for a label.
func (t *Task) LabelTarget(label string) string {
	return strings.ReplaceAll(t.Output, "{label}", label)
}

// FormatEntities writes entities as an extraction target: "PER: Angela Merkel; LOC:
// Berlin", or "none".
func FormatEntities(es []Entity) string {
	if len(es) == 0 {
		return "none"
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Type + ": " + e.Text
	}
	return strings.Join(parts, "; ")
}

// ParseOutput reads a model's completion back: the label (classification), the entities
// (extraction) or the text (generation). ok is false when the completion does not follow
// the output format (a format error): an unknown label or entity type, a part without
// "TYPE: ".
func (t *Task) ParseOutput(completion string) (label string, entities []Entity, ok bool) {
	prefix, suffix, _ := strings.Cut(t.Output, t.kind.field())
	s := strings.TrimPrefix(completion, prefix)
	if suffix != "" {
		if i := strings.Index(s, suffix); i >= 0 {
			s = s[:i]
		}
	}
	return t.kind.read(t, strings.TrimSpace(s))
}
