// Package catalog is cold-start mode's source of data: datasets on local disk (no model
// hub or web is reached), found under the folders it is given, each described by a card
// — a dataset.yaml beside the files, or one inferred from them: which column is the text,
// which the label or the answer, which files are which split — and ranked by relevance to
// a task description (BM25 over the card, the label names and sample rows).
//
// A dataset folder is one that holds a dataset.yaml, a Pioneer task.yaml, or data files:
// JSONL (flat or nested objects; nested fields are named "a.b"), CSV or TSV with a header
// row, a JSON object of splits whose rows are [text, label] pairs, or CoNLL token-per-line
// files (the last column IOB2 entity tags). Files named train*, dev*/valid*, test* are
// those splits; a lone file is split "data".
package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// Kind is what a dataset's fields make it.
type Kind string

// The kinds.
const (
	Classification Kind = "classification" // text and a label from a small set
	Extraction     Kind = "extraction"     // text with typed entity spans
	Generation     Kind = "generation"     // text and a free-form answer
	// MultipleChoice: a question, its choices and the key of the right one; examples are
	// the question with its choices lettered (A., B., ...) and the right letter as label.
	MultipleChoice Kind = "multiple_choice"
	Unknown        Kind = "" // no usable fields found
)

// Card describes a dataset: written as dataset.yaml, or inferred.
type Card struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	License     string `yaml:"license"`
	// Kind, and the fields that hold the input text, the label (classification) and the
	// answer (generation); empty fields are inferred.
	Kind   Kind   `yaml:"kind"`
	Text   string `yaml:"text"`
	Label  string `yaml:"label"`
	Output string `yaml:"output"`
	// Tests is a generation dataset's field of tests for its answers, programs: a list of
	// Python asserts (MBPP's test_list); inferred from a test-named field of such lists.
	Tests string `yaml:"tests"`
	// Choices is the field of a multiple-choice question's choices: a list of {text,
	// label} objects (ARC), or the prefix of parallel "label" and "text" lists
	// (CommonsenseQA's choices.label, choices.text).
	Choices string `yaml:"choices"`
	// Splits names each split's file, relative to the folder; inferred from file names
	// when empty.
	Splits map[string]string `yaml:"splits"`
	// LabelNames names the label values where the data holds codes ("0": negative).
	LabelNames map[string]string `yaml:"label_names"`
}

// Dataset is a dataset folder with its card and what reading it found.
type Dataset struct {
	Card
	Dir      string
	Format   string         // jsonl, csv, tsv, json-splits, conll or task
	Inferred []string       // the card's parts that were inferred, not written
	Labels   map[string]int // classification: label -> examples, over every split
	Types    map[string]int // extraction: entity type -> entities, over every split
	Rows     map[string]int // split -> examples
	Sample   []Row          // the first rows of the first split, for ranking and people
	task     *task.Task     // format "task": the task it was read from
}

// Row is one record with its fields as text.
type Row map[string]string

// maxRows bounds what is read of one file.
const maxRows = 200_000

// sampleRows is how many rows a dataset keeps for ranking.
const sampleRows = 50

// Catalog is the datasets found.
type Catalog struct {
	Datasets []*Dataset
	// Skipped says, for folders with files that did not make a dataset, why.
	Skipped map[string]string
}

// Open finds every dataset under the given folders. A folder that cannot be read is an
// error; a dataset folder whose files cannot be used is recorded in Skipped.
func Open(dirs ...string) (*Catalog, error) {
	c := &Catalog{Skipped: map[string]string{}}
	for _, root := range dirs {
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("catalog: %s is not a folder", root)
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") && p != root {
				return filepath.SkipDir
			}
			ds, ok, err := openDir(p)
			if err != nil {
				c.Skipped[p] = err.Error()
				return filepath.SkipDir
			}
			if ok {
				c.Datasets = append(c.Datasets, ds)
				return filepath.SkipDir // a dataset's subfolders are its own
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if err := describeFromIndex(root, c.Datasets); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	sort.Slice(c.Datasets, func(i, j int) bool { return c.Datasets[i].Dir < c.Datasets[j].Dir })
	return c, nil
}

// openDir reads the dataset in dir, if dir is one (ok false: no data files here).
func openDir(dir string) (*Dataset, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	d := &Dataset{Dir: dir, Labels: map[string]int{}, Types: map[string]int{}, Rows: map[string]int{}}
	var files []string
	hasCard := false
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch n := e.Name(); {
		case n == "dataset.yaml":
			hasCard = true
		case n == "task.yaml":
			return openTask(dir)
		case dataFile(n) != "":
			files = append(files, n)
		}
	}
	if hasCard {
		b, err := os.ReadFile(filepath.Join(dir, "dataset.yaml"))
		if err != nil {
			return nil, false, err
		}
		if err := yaml.Unmarshal(b, &d.Card); err != nil {
			return nil, false, fmt.Errorf("dataset.yaml: %w", err)
		}
	} else if len(files) == 0 {
		return nil, false, nil
	}
	if d.Name == "" {
		d.Name = filepath.Base(dir)
		d.Inferred = append(d.Inferred, "name")
	}
	if len(d.Splits) == 0 {
		d.Splits = splitsOf(files)
		d.Inferred = append(d.Inferred, "splits")
	}
	if len(d.Splits) == 0 {
		return nil, false, fmt.Errorf("no data files")
	}
	if err := d.read(); err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// dataFile is the format a file name says, or "".
func dataFile(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".jsonl"):
		return "jsonl"
	case strings.HasSuffix(n, ".csv"):
		return "csv"
	case strings.HasSuffix(n, ".tsv"):
		return "tsv"
	case strings.HasSuffix(n, ".json"):
		return "json-splits"
	case strings.HasSuffix(n, ".txt") || strings.HasSuffix(n, ".conll"):
		return "conll"
	}
	return ""
}

// splitsOf names the split of each data file by its name: train, validation, test; with
// one file of none of these, it is split "data". Files of other names (label lists,
// extra splits) are left out when the usual ones are there.
func splitsOf(files []string) map[string]string {
	out := map[string]string{}
	var other []string
	for _, f := range files {
		base := strings.ToLower(strings.TrimSuffix(f, filepath.Ext(f)))
		switch {
		case strings.HasPrefix(base, "train") || strings.HasSuffix(base, "train"):
			out["train"] = f
		case strings.HasPrefix(base, "dev") || strings.HasPrefix(base, "valid") || strings.HasSuffix(base, ".dev") || strings.HasSuffix(base, "validation"):
			out["validation"] = f
		case strings.HasPrefix(base, "test") || strings.HasSuffix(base, "test"):
			out["test"] = f
		default:
			other = append(other, f)
		}
	}
	if len(out) == 0 && len(other) > 0 {
		// One data file: the largest-looking name wins deterministically (a JSON label
		// list beside a data file is not data).
		slices.Sort(other)
		for _, f := range other {
			if dataFile(f) != "json-splits" || len(other) == 1 {
				out["data"] = f
				break
			}
		}
		if len(out) == 0 {
			out["data"] = other[0]
		}
	}
	return out
}

// SplitNames lists the dataset's splits in a stable order: train, validation, test, then
// the others by name.
func (d *Dataset) SplitNames() []string {
	rank := map[string]int{"train": 0, "validation": 1, "test": 2}
	names := slices.Collect(maps.Keys(d.Splits))
	sort.Slice(names, func(i, j int) bool {
		ri, oki := rank[names[i]]
		rj, okj := rank[names[j]]
		switch {
		case oki && okj:
			return ri < rj
		case oki != okj:
			return oki
		}
		return names[i] < names[j]
	})
	return names
}

// Describe is a one-line account of the dataset for people.
func (d *Dataset) Describe() string {
	var parts []string
	for _, s := range d.SplitNames() {
		parts = append(parts, fmt.Sprintf("%s %d", s, d.Rows[s]))
	}
	what := string(d.Kind)
	switch d.Kind {
	case Classification:
		what = fmt.Sprintf("classification, %d labels (text %q, label %q)", len(d.Labels), d.Text, d.Label)
	case Extraction:
		what = fmt.Sprintf("extraction, entity types %s", strings.Join(sortedKeys(d.Types), ", "))
	case Generation:
		what = fmt.Sprintf("generation (input %q, answer %q)", d.Text, d.Output)
		if d.Tests != "" {
			what = fmt.Sprintf("generation (input %q, answer %q, tests %q)", d.Text, d.Output, d.Tests)
		}
	case MultipleChoice:
		what = fmt.Sprintf("multiple choice (question %q, choices %q, key %q; keys %s)", d.Text, d.Choices, d.Label, strings.Join(sortedKeys(d.Labels), ", "))
	}
	s := fmt.Sprintf("%s (%s): %s; %s", d.Name, d.Format, what, strings.Join(parts, ", "))
	if len(d.Inferred) > 0 {
		s += "; inferred: " + strings.Join(d.Inferred, ", ")
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// indexFiles are the files of a catalog folder that may describe the datasets below it.
var indexFiles = []string{"SOURCES.md", "README.md"}

// describeFromIndex gives each dataset under root that has no description the entry of
// root's index file (SOURCES.md or README.md: a list item or paragraph) that names its
// folder ("intent/banking77/", or a file in it), and a dataset's own README.md's first
// paragraph when no index names it.
func describeFromIndex(root string, ds []*Dataset) error {
	var blocks []string
	for _, f := range indexFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		blocks = append(blocks, mdBlocks(string(b))...)
	}
	for _, d := range ds {
		if d.Description != "" || strings.HasPrefix(d.Dir, "bundled:") {
			continue
		}
		rel, err := filepath.Rel(root, d.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		rel = filepath.ToSlash(rel)
		for _, b := range blocks {
			if rel != "." && (strings.Contains(b, rel+"/") || strings.Contains(b, rel+"`")) {
				d.Description = b
				break
			}
		}
		if d.Description == "" {
			if b, err := os.ReadFile(filepath.Join(d.Dir, "README.md")); err == nil {
				if bs := mdBlocks(string(b)); len(bs) > 0 {
					d.Description = bs[0]
				}
			}
		}
		if d.Description != "" {
			d.Inferred = append(d.Inferred, "description")
			if d.License == "" {
				d.License = licenseOf(d.Description)
			}
		}
	}
	return nil
}

// licenseRe finds a licence statement in a description: "license CC-BY-4.0 (repo LICENSE)".
var licenseRe = regexp.MustCompile(`(?i)\blicen[cs]e\b[:\s]+[^—;\n]{1,100}`)

// licenseOf is the licence statement of a description ("license MIT"), "none stated"
// where it says there is none ("no license in the source repo"), or "".
func licenseOf(desc string) string {
	loc := licenseRe.FindStringIndex(desc)
	if loc == nil {
		return ""
	}
	if before := strings.ToLower(desc[:loc[0]]); strings.HasSuffix(before, "no ") || strings.HasSuffix(before, "states no ") {
		return "none stated"
	}
	return strings.TrimSpace(desc[loc[0]:loc[1]])
}

// mdBlocks splits Markdown into list items and paragraphs (headings left out).
func mdBlocks(s string) []string {
	var out []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, " "))
			cur = nil
		}
	}
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			flush()
		case strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "* "):
			flush()
			cur = append(cur, t[2:])
		default:
			cur = append(cur, t)
		}
	}
	flush()
	return out
}
