// Command adaptft is AdaptFT-Bench's generator: for each of seven scenarios (a task
// kind each: intents twice, spam, entities, multiple choice, maths, summaries) it draws
// four deployment stages of about 500 log lines with 0, 15, 25 and 40 % of the seen
// lines poisoned and about 30 % carrying fixable noise, split 70/30 into the logs the
// agent sees and a test part, and writes them in Pioneer's failure-log format with a
// truth file the agent never reads (bench/adaptft/README.md is the format's spec).
//
//	go run ./bench/adaptft -scenario gsm8k -seed 1 -out runs/adaptft
//	go run ./bench/adaptft -all -seed 1 -out runs/adaptft
//
// The harness that deploys, retrains naively and runs the agent stage after stage on
// these files is not built yet (issue 22); this command only generates them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"gopkg.in/yaml.v3"
)

func main() {
	name := flag.String("scenario", "", "scenario: "+strings.Join(scenarioNames(), ", "))
	all := flag.Bool("all", false, "every scenario")
	seed := flag.Uint64("seed", 1, "seed of the draw and the perturbations")
	out := flag.String("out", "runs/adaptft", "folder for <scenario>/seed<S>/...")
	data := flag.String("data", filepath.Join("..", "shared", "data"), "the shared data folder (for the scenarios not bundled)")
	flag.Parse()
	names := []string{*name}
	if *all {
		names = scenarioNames()
	} else if *name == "" {
		fmt.Fprintln(os.Stderr, "adaptft: give -scenario NAME or -all")
		os.Exit(2)
	}
	for _, n := range names {
		if err := run(n, *data, *out, *seed); err != nil {
			fmt.Fprintln(os.Stderr, "adaptft:", err)
			os.Exit(1)
		}
	}
}

// logRecord is a seen line in the failure-log format (agent/triage): "output" is what the
// deployed model answered, which the harness fills in when it runs the deployment.
type logRecord struct {
	ID       string `json:"id"`
	Input    string `json:"input"`
	Expected string `json:"expected"`
}

// truthRecord is what was done to a line.
type truthRecord struct {
	ID       string   `json:"id"`
	Stage    int      `json:"stage"`
	Part     string   `json:"part"` // seen or test
	Source   string   `json:"source"`
	Fixable  []string `json:"fixable,omitempty"`
	Poison   string   `json:"poison,omitempty"`
	Describe string   `json:"describe"`
}

// stageSummary counts a stage's lines.
type stageSummary struct {
	Stage      int            `json:"stage"`
	PoisonRate float64        `json:"poison_rate"`
	Seen       int            `json:"seen"`
	Test       int            `json:"test"`
	Poisoned   int            `json:"poisoned"`     // seen lines (the test part is never poisoned)
	Fixable    int            `json:"fixable_seen"` // seen lines with fixable noise
	FixableT   int            `json:"fixable_test"` // test lines with fixable noise
	Kinds      map[string]int `json:"kinds"`
}

func run(name, dataDir, out string, seed uint64) error {
	sc, err := loadScenario(name, dataDir)
	if err != nil {
		return err
	}
	stages, reserve := generate(sc, seed)
	if len(stages[0]) == 0 {
		return fmt.Errorf("%s: a pool of %d examples leaves none for the stages after the %d parent and %d validation examples", name, len(sc.pool), sc.parent, validationN)
	}
	dir := filepath.Join(out, name, fmt.Sprintf("seed%d", seed))
	var truth []truthRecord
	var sums []stageSummary
	var heldOut []task.Example // the stages' test parts
	for s, st := range stages {
		var logs []logRecord
		var test []task.Example
		sum := stageSummary{Stage: s, PoisonRate: poisonRates[s], Kinds: map[string]int{}}
		for _, l := range st {
			part := "test"
			if l.Seen {
				part = "seen"
				logs = append(logs, logRecord{ID: l.Example.ID, Input: l.Example.Text, Expected: expected(sc, l.Example)})
				sum.Seen++
			} else {
				test = append(test, l.Example)
				heldOut = append(heldOut, l.Example)
				sum.Test++
			}
			if l.Poison != "" {
				sum.Poisoned++
				sum.Kinds["poison:"+l.Poison]++
			}
			for _, f := range l.Fixable {
				sum.Kinds["fixable:"+f]++
			}
			switch {
			case len(l.Fixable) > 0 && l.Seen:
				sum.Fixable++
			case len(l.Fixable) > 0:
				sum.FixableT++
			}
			truth = append(truth, truthRecord{ID: l.Example.ID, Stage: s, Part: part, Source: l.Source, Fixable: l.Fixable, Poison: l.Poison,
				Describe: describe(l.Fixable, l.Poison)})
		}
		sd := filepath.Join(dir, fmt.Sprintf("stage%d", s))
		if err := writeLines(filepath.Join(sd, "logs.jsonl"), logs); err != nil {
			return err
		}
		if err := writeLines(filepath.Join(sd, "test.jsonl"), test); err != nil {
			return err
		}
		sums = append(sums, sum)
	}
	if err := writeLines(filepath.Join(dir, "truth.jsonl"), truth); err != nil {
		return err
	}
	parent, val, pool := reserve[:sc.parent], reserve[sc.parent:sc.parent+validationN], reserve[sc.parent+validationN:]
	if err := writeLines(filepath.Join(dir, "parent.jsonl"), parent); err != nil {
		return err
	}
	if err := writeTask(filepath.Join(dir, "task"), sc, pool, val, heldOut); err != nil {
		return err
	}
	info := map[string]any{"scenario": name, "kind": sc.kind, "source": sc.source, "pool": len(sc.pool), "labels": len(sc.labels), "seed": seed,
		"parent": len(parent), "validation": len(val), "agent_pool": len(pool), "held_out": len(heldOut), "stages": sums}
	if err := fsutil.WriteJSON(filepath.Join(dir, "summary.json"), info); err != nil {
		return err
	}
	fmt.Printf("%s seed %d (%s, %s): ", name, seed, sc.kind, sc.source)
	for _, s := range sums {
		fmt.Printf("stage %d: %d seen (%d poisoned, %d with fixable noise), %d test (%d with fixable noise); ", s.Stage, s.Seen, s.Poisoned, s.Fixable, s.Test, s.FixableT)
	}
	fmt.Printf("-> %s\n", dir)
	return nil
}

// expected is an example's answer in the task's output format.
func expected(sc *scenario, ex task.Example) string {
	switch sc.kind {
	case kindLabel, kindChoice:
		return ex.Label
	case kindEntities:
		return task.FormatEntities(ex.Entities)
	}
	return ex.Output
}

// writeTask writes the scenario's task folder: task.yaml, its train split (the pool the
// agent may draw examples from), validation (what the agent's gate scores) and test (the
// held-out set: the stages' test parts, which score every model).
func writeTask(dir string, sc *scenario, pool, val, test []task.Example) error {
	spec := sc.spec
	spec.Data = map[string]string{"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return err
	}
	for name, exs := range map[string][]task.Example{"train.jsonl": pool, "validation.jsonl": val, "test.jsonl": test} {
		if err := writeLines(filepath.Join(dir, name), exs); err != nil {
			return err
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "task.yaml"), b); err != nil {
		return err
	}
	if _, err := task.Load(dir); err != nil {
		return fmt.Errorf("the task written does not load: %w", err)
	}
	return nil
}

func writeLines[T any](path string, rows []T) error {
	if len(rows) == 0 {
		return errors.New(path + ": nothing to write")
	}
	return fsutil.WriteJSONL(path, rows)
}
