package main

// Command adaptft is AdaptFT-Bench: a generator and a harness. For each of seven
// scenarios (a task kind each: intents twice, spam, entities, multiple choice, maths,
// summaries) the generator draws four deployment stages of about 500 log lines with 0,
// 15, 25 and 40 % of the seen lines poisoned and about 30 % carrying fixable noise,
// split 70/30 into the logs the agent sees and a test part, and writes them in Pioneer's
// failure-log format with a truth file the agent never reads, the deployment's parent
// data and the scenario's task folder (bench/adaptft/README.md is the format's spec).
// The harness then deploys the base model on the parent data and, stage after stage,
// compares naive retraining with the agent (production mode), the agent's version
// becoming the next stage's deployment; it writes bench/results/adaptft[_MODEL].json
// with the figures of every scenario run so far, and a plot beside it.
//
//	go run ./bench/adaptft -scenario clinc150 -seed 1            # generate and run
//	go run ./bench/adaptft -all -seed 1                          # every scenario
//	go run ./bench/adaptft -all -generate-only -out runs/adaptft # the files only
//	go run ./bench/adaptft -scenario clinc150 -resume            # continue a killed run
import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"gopkg.in/yaml.v3"
)

func main() {
	name := flag.String("scenario", "", "scenario: "+strings.Join(scenarioNames(), ", "))
	all := flag.Bool("all", false, "every scenario")
	seed := flag.Uint64("seed", 1, "seed of the draw, the perturbations and the training runs")
	out := flag.String("out", "runs/adaptft", "folder for <scenario>/seed<S>/...")
	dataDir := flag.String("data", filepath.Join("..", "shared", "data"), "the shared data folder (for the scenarios not bundled)")
	generateOnly := flag.Bool("generate-only", false, "write the files only: no deployment, no training")
	audit := flag.Bool("triage-audit", false, "score production mode's triage (text checks, no model) on the scenarios' seen lines against their truth files; writes bench/results/adaptft_triage.json (or -result)")
	result := flag.String("result", "", "result file (default bench/results/adaptft[_MODEL].json; a PNG of the same name beside it)")
	device := flag.String("device", "cpu", "cpu, cuda or auto")
	h := harness{Log: os.Stderr}
	flag.StringVar(&h.Model, "model", data.NanoModel, "base model: "+data.NanoModel+" or "+data.SmolLM2+" (or a model folder or GGUF file)")
	flag.IntVar(&h.Override.Epochs, "epochs", 0, "override the scenarios' training epochs")
	flag.Float64Var(&h.Override.LR, "lr", 0, "override the scenarios' learning rate")
	flag.StringVar(&h.Strategy, "strategy", "", "override the scenarios' strategy: lora or full (every weight)")
	flag.IntVar(&h.Iterations, "iterations", 0, "the agent's search budget per stage in rounds of 2 candidates (0: production mode's, 3)")
	flag.DurationVar(&h.StageWall, "stage-wall", 0, "the agent's wall-time bound per stage (0: none; checked before each round)")
	flag.BoolVar(&h.Resume, "resume", false, "continue an interrupted harness run (same flags): finished phases are kept, an interrupted training continues from its checkpoint")
	commit := flag.String("commit", "", "the commit to record (default: the checkout's at the start, also with -resume: give the commit the interrupted run began at when it was another)")
	flag.Parse()
	names := []string{*name}
	if *all {
		names = scenarioNames()
	} else if *name == "" {
		fmt.Fprintln(os.Stderr, "adaptft: give -scenario NAME or -all")
		os.Exit(2)
	}
	h.Commit = *commit
	if *audit {
		if err := triageAudit(names, *dataDir, *out, *seed, *result); err != nil {
			fmt.Fprintln(os.Stderr, "adaptft:", err)
			os.Exit(1)
		}
		return
	}
	if err := main1(names, *dataDir, *out, *seed, *generateOnly, *device, *result, &h); err != nil {
		fmt.Fprintln(os.Stderr, "adaptft:", err)
		os.Exit(1)
	}
}

func main1(names []string, dataDir, out string, seed uint64, generateOnly bool, device, result string, h *harness) error {
	var err error
	if h.Device, err = torch.ParseDevice(device); err != nil {
		return err
	}
	// The code measured is the checkout's when the run starts (a commit made while it
	// runs does not change what runs).
	if h.Commit == "" {
		h.Commit = bench.Commit()
	}
	for _, n := range names {
		sc, dir, err := run(n, dataDir, out, seed)
		if err != nil {
			return err
		}
		if generateOnly {
			continue
		}
		files, err := filesSum(dir)
		if err != nil {
			return err
		}
		r, err := h.run(sc, dir, seed, files)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		r.Table(os.Stdout)
		if err := r.Write(filepath.Join(dir, h.workName(), "result.json")); err != nil {
			return err
		}
	}
	if generateOnly {
		return nil
	}
	if result == "" {
		result = "bench/results/adaptft" + bench.ResultSuffix(h.Model) + ".json"
	}
	return combine(out, seed, h, result)
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

// run generates a scenario's files for a seed into out/<scenario>/seed<S> and returns
// the scenario and that folder.
func run(name, dataDir, out string, seed uint64) (*scenario, string, error) {
	sc, err := loadScenario(name, dataDir)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(out, name, fmt.Sprintf("seed%d", seed))
	return sc, dir, write(sc, dir, seed)
}

// write generates the scenario's files into dir.
func write(sc *scenario, dir string, seed uint64) error {
	name := sc.name
	stages, reserve := generate(sc, seed)
	if len(stages[0]) == 0 {
		return fmt.Errorf("%s: a pool of %d examples leaves none for the stages after the %d parent and %d validation examples", name, len(sc.pool), sc.parent, validationN)
	}
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
