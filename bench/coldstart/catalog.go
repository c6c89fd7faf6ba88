package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
)

// buildCatalog mirrors the benchmark's datasets from shared into catDir without their
// test files (links to the others), with the shared SOURCES.md and the cards the tasks
// name; SMS Spam's single file is split by a hash of each line into train.tsv (in the
// catalog) and test.tsv (in heldout).
func buildCatalog(shared, catDir, heldout string) error {
	if err := os.RemoveAll(catDir); err != nil {
		return err
	}
	if err := os.MkdirAll(catDir, 0o755); err != nil {
		return err
	}
	if err := link(filepath.Join(shared, "SOURCES.md"), filepath.Join(catDir, "SOURCES.md")); err != nil {
		return err
	}
	for _, name := range taskNames() {
		bt := tasks[name]
		src, dst := filepath.Join(shared, bt.dir), filepath.Join(catDir, bt.dir)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if bt.idField != "" {
			if len(entries) != 1 {
				return fmt.Errorf("%s: an id split needs one data file, %s has %d", name, src, len(entries))
			}
			if err := idSplit(filepath.Join(src, entries[0].Name()), bt.idField, bt.testIDs, filepath.Join(dst, "train.jsonl"), filepath.Join(heldout, bt.dir, "test.jsonl")); err != nil {
				return err
			}
			continue
		}
		if bt.test == nil && bt.skip == "" {
			if len(entries) != 1 {
				return fmt.Errorf("%s: a hash split needs one data file, %s has %d", name, src, len(entries))
			}
			if err := hashSplit(filepath.Join(src, entries[0].Name()), filepath.Join(dst, "train.tsv"), filepath.Join(heldout, bt.dir, "test.tsv")); err != nil {
				return err
			}
			continue
		}
		for _, e := range entries {
			if e.IsDir() || slices.Contains(bt.test, e.Name()) {
				continue
			}
			if err := link(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		if bt.card != "" {
			if err := os.WriteFile(filepath.Join(dst, "dataset.yaml"), []byte(bt.card), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func link(src, dst string) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	return os.Symlink(abs, dst)
}

// hashSplit writes a header-first TSV's lines to train or test by an FNV hash of the
// line (a fifth to test): the same split every time, with no file to commit.
func hashSplit(src, train, test string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 {
		return fmt.Errorf("%s: no rows", src)
	}
	var tr, te strings.Builder
	tr.WriteString(lines[0] + "\n")
	te.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		h := fnv.New32a()
		h.Write([]byte(l))
		if h.Sum32()%5 == 0 {
			te.WriteString(l + "\n")
		} else {
			tr.WriteString(l + "\n")
		}
	}
	return writeSplits(map[string]string{train: tr.String(), test: te.String()})
}

// writeSplits writes each file's content, its folder made first.
func writeSplits(files map[string]string) error {
	for path, s := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// idSplit writes a JSONL file's rows to test when their id field is within ids, else to
// train.
func idSplit(src, field string, ids [2]int, train, test string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var tr, te strings.Builder
	for i, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			return fmt.Errorf("%s line %d: %w", src, i+1, err)
		}
		id, ok := row[field].(float64)
		if !ok {
			return fmt.Errorf("%s line %d: no number %q", src, i+1, field)
		}
		if int(id) >= ids[0] && int(id) <= ids[1] {
			te.WriteString(l + "\n")
		} else {
			tr.WriteString(l + "\n")
		}
	}
	if te.Len() == 0 || tr.Len() == 0 {
		return fmt.Errorf("%s: %s %v leaves a split empty", src, field, ids)
	}
	return writeSplits(map[string]string{train: tr.String(), test: te.String()})
}

// testExamples reads a task's test split from the shared data (SMS Spam: from heldout)
// and maps it onto the plan's task with the plan's map for that dataset.
func testExamples(p *coldstart.Plan, bt benchTask, shared, heldout string) ([]task.Example, error) {
	dir := filepath.Join(heldout, bt.dir) // split here: the test part is in heldout
	split := "test"
	if bt.test != nil {
		// The test files alone, so that their own header names the fields (SST-2's test
		// file says "content" where its training file says "sentence").
		dir = filepath.Join(heldout, "official", bt.dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for _, f := range bt.test {
			if err := link(filepath.Join(shared, bt.dir, f), filepath.Join(dir, f)); err != nil {
				return nil, err
			}
		}
	}
	c, err := catalog.Open(dir)
	if err != nil {
		return nil, err
	}
	if len(c.Datasets) != 1 {
		return nil, fmt.Errorf("%s: %d datasets (skipped %v)", dir, len(c.Datasets), c.Skipped)
	}
	d := c.Datasets[0]
	if bt.card != "" { // the card the agent's copy has names the labels the same way
		var card catalog.Card
		if err := yaml.Unmarshal([]byte(bt.card), &card); err != nil {
			return nil, fmt.Errorf("%s's card: %w", bt.dataset, err)
		}
		d.LabelNames = card.LabelNames
	}
	var src *coldstart.Source
	for i := range p.Sources {
		if p.Sources[i].Dataset == bt.dataset {
			src = &p.Sources[i]
		}
	}
	if src == nil {
		return nil, fmt.Errorf("the plan uses no %s data, so its labels have no map onto the task's", bt.dataset)
	}
	exs, _, err := d.Examples(split)
	if err != nil {
		return nil, err
	}
	var out []task.Example
	for _, ex := range exs {
		if m, ok := p.MapExample(ex, *src); ok {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no test example maps onto the task", bt.dataset)
	}
	return out, nil
}
