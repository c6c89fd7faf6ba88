package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// planCommand is cold-start's first stages on their own: a task description (and a
// few examples) → the task, the catalog's data for it, a frozen evaluation set, written
// as a task folder that `pioneer tune --task DIR` and `pioneer adapt --task DIR` take.
func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "turn a task description into a task folder: type, labels, prompt and metric, data from local catalogs, a frozen evaluation set",
		ArgsUsage: `"DESCRIPTION"`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "catalog", Usage: "a folder of datasets (JSONL, CSV, TSV, JSON splits, CoNLL; dataset.yaml cards optional); repeatable; the bundled tasks are always in"},
			&cli.StringFlag{Name: "examples", Usage: "a JSONL file of a few examples ({\"text\", \"label\"|\"entities\"|\"output\"}): they decide the type and labels"},
			&cli.StringFlag{Name: "out", Usage: "write the task folder here (task.yaml, train.jsonl, validation.jsonl, eval.jsonl as the test split, plan.json); without it the plan is only printed"},
			&cli.IntFlag{Name: "eval-size", Value: 200, Usage: "examples in the frozen evaluation set (at most a third of a small pool)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the evaluation set's draw"},
			urlFlag("planner", "proposes the task (type, labels or entity types, metric) as JSON; what fails or is invalid falls back to the built-in planner"),
			modelFlag("planner"),
			redactFlag,
		},
		Action: func(c *cli.Context) error {
			if err := checkInts(c, intRange{"eval-size", 1, 100_000}); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return fmt.Errorf("plan takes one argument, the task description in quotes (got %d)", c.NArg())
			}
			var examples []task.Example
			if f := c.String("examples"); f != "" {
				var err error
				if examples, err = readExamples(f); err != nil {
					return err
				}
			}
			cat, err := catalog.Open(c.StringSlice("catalog")...)
			if err != nil {
				return err
			}
			if err := cat.AddBundled(); err != nil {
				return err
			}
			for dir, why := range cat.Skipped {
				fmt.Fprintf(os.Stderr, "catalog  skipped %s: %s\n", dir, why)
			}
			planner, err := endpointClient(c, "planner")
			if err != nil {
				return err
			}
			p, err := coldstart.PlanWith(c.Context, planner, c.Args().First(), examples, cat)
			if err != nil {
				return err
			}
			fmt.Printf("task     %s: %s", p.Task.Name, p.Task.Type)
			if p.MultipleChoice {
				fmt.Print(" (multiple choice)")
			}
			fmt.Printf(", metric %s, prompt %q, output %q\n", p.Task.Metric, p.Task.Prompt, p.Task.Output)
			if len(p.Task.Labels) > 0 {
				fmt.Printf("labels   %s\n", strings.Join(p.Task.Labels, ", "))
			}
			if len(p.Task.EntityTypes) > 0 {
				fmt.Printf("entities %s\n", strings.Join(p.Task.EntityTypes, ", "))
			}
			for _, r := range p.Reasons {
				fmt.Printf("  - %s\n", r)
			}
			out := c.String("out")
			if out == "" {
				return nil
			}
			if len(p.Sources) == 0 {
				return errors.New("no dataset in the catalogs supplies this task: add one with --catalog (or name labels that a dataset has)")
			}
			pool, err := coldstart.Gather(p, cat)
			if err != nil {
				return err
			}
			fmt.Printf("data     %d examples from %v; left out: %v\n", len(pool.Examples), pool.From, pool.Dropped)
			es, train, dev, err := coldstart.Freeze(out, p, pool.Examples, c.Int("eval-size"), c.Uint64("seed"))
			if err != nil {
				return err
			}
			fmt.Printf("eval     %d examples, frozen (%v); %d near-duplicates of them taken out of training\n", len(es.Examples), es.Make, es.NearDuplicates)
			if err := fsutil.WriteJSON(filepath.Join(out, "plan.json"), map[string]any{"plan": p, "pool": pool, "eval": es}); err != nil {
				return err
			}
			fmt.Printf("wrote    %s: %d training, %d dev (validation split), %d frozen evaluation (test split) examples\n", out, len(train), len(dev), len(es.Examples))
			fmt.Printf("train    pioneer tune --task %s --model pioneer-nano --out runs/%s\n", out, p.Task.Name)
			return nil
		},
	}
}

// readExamples reads the user's examples: JSONL task examples, checked only for a text
// (the planner decides the task from them).
func readExamples(path string) ([]task.Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []task.Example
	err = jsonl.Read(f, 1<<20, func(l jsonl.Line) error {
		if l.TooLong {
			return fmt.Errorf("%s line %d: longer than 1 MiB", path, l.N)
		}
		dec := json.NewDecoder(bytes.NewReader(l.Bytes))
		dec.DisallowUnknownFields()
		var ex task.Example
		if err := dec.Decode(&ex); err != nil {
			return fmt.Errorf("%s line %d: %w", path, l.N, err)
		}
		if strings.TrimSpace(ex.Text) == "" {
			return fmt.Errorf("%s line %d: no \"text\"", path, l.N)
		}
		out = append(out, ex)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no examples", path)
	}
	return out, nil
}
