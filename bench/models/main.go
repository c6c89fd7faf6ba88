// Command models compares base models on the bundled tasks: for each model, task and
// example budget, the test metric of the base model as it is (zero-shot: classification
// scores every label, extraction decodes greedily), after a LoRA fine-tune and after a
// full fine-tune, with training and evaluation speed. Every figure's name ends with the
// model (_nano, _smollm2). Writes bench/results/models.json.
//
// Each run's folder keeps its result.json; a later invocation with the same settings
// reuses it, so an interrupted measurement resumes where it stopped (-fresh: rerun all).
//
//	go run ./bench/models [-models pioneer-nano,smollm2-135m-instruct] [-tasks banking77,clinc150,conll2003]
//	                      [-budgets 10,50] [-skip 'smollm2-135m-instruct/clinc150/*/50']
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/tune"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// settings is one model's training recipe; a run is reused only under the same settings.
type settings struct {
	Model    string  `json:"model"`
	Task     string  `json:"task"`
	Method   string  `json:"method"` // lora or full
	PerLabel int     `json:"per_label"`
	Train    int     `json:"train_examples"`
	Eval     int     `json:"eval_examples"`
	Epochs   int     `json:"epochs"`
	LR       float64 `json:"lr"`
	Seed     uint64  `json:"seed"`
	Threads  int     `json:"threads"`
	Before   bool    `json:"before"` // the base model evaluated too (the first run of a model and task)
}

func main() {
	models := flag.String("models", data.NanoModel+","+data.SmolLM2, "base models to compare (names or folders)")
	tasks := flag.String("tasks", "banking77,clinc150,conll2003", "bundled tasks")
	budgets := flag.String("budgets", "10,50", "training examples per label (per entity type for extraction)")
	methods := flag.String("methods", "lora,full", "fine-tuning methods: lora, full")
	skip := flag.String("skip", "", "comma-separated model/task/method/budget patterns (path.Match, * for any) not to run")
	evalN := flag.Int("eval-examples", 200, "test examples per task (a seeded, label-balanced draw; the same for every run of a task)")
	epochs := flag.Int("epochs", 2, "passes over the training examples")
	loraLR := flag.Float64("lora-lr", 5e-3, "LoRA peak learning rate (every model)")
	fullLR := flag.String("full-lr", data.NanoModel+"=1e-3,"+data.SmolLM2+"=5e-5", "full fine-tuning peak learning rate per model (model=lr, comma-separated)")
	threads := flag.Int("threads", 0, "CPU threads for libtorch (0: libtorch's default)")
	runs := flag.String("runs", "runs/bench-models", "folder for the fine-tuning runs")
	fresh := flag.Bool("fresh", false, "rerun every run even where a finished one with the same settings exists")
	out := flag.String("out", "bench/results/models.json", "result file")
	merge := flag.String("merge", "", "an earlier result of this benchmark (e.g. bench/results/models.json) whose figures this run does not measure are kept in the result, named in its method")
	flag.Parse()
	c := config{models: split(*models), tasks: split(*tasks), methods: split(*methods), skip: split(*skip),
		evalN: *evalN, epochs: *epochs, loraLR: *loraLR, threads: *threads, runs: *runs, fresh: *fresh}
	var err error
	if c.budgets, err = ints(*budgets); err == nil {
		c.fullLR, err = rates(*fullLR)
	}
	if err == nil {
		err = c.run(os.Args[1:], *out, *merge)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/models:", err)
		os.Exit(1)
	}
}

type config struct {
	models, tasks, methods, skip []string
	budgets                      []int
	evalN, epochs, threads       int
	loraLR                       float64
	fullLR                       map[string]float64
	runs                         string
	fresh                        bool
}

func (c config) run(args []string, out, merge string) error {
	for _, m := range c.methods {
		if m != "lora" && m != "full" {
			return fmt.Errorf("-methods: %q is neither lora nor full", m)
		}
	}
	for _, m := range c.models {
		if _, ok := c.fullLR[m]; !ok && slices.Contains(c.methods, "full") {
			return fmt.Errorf("-full-lr names no learning rate for %s", m)
		}
	}
	if c.threads > 0 {
		torch.SetNumThreads(c.threads)
	}
	cmd := "go run ./bench/models"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	var lrs []string
	for _, m := range c.models {
		lrs = append(lrs, fmt.Sprintf("%s %g", m, c.fullLR[m]))
	}
	method := fmt.Sprintf("Per model, task and budget (training examples per label, per entity type for CoNLL-2003; a seeded, label-balanced draw, seed 1): "+
		"<task>_zero_shot_<model> = the base model as it is; <task>_lora_<n>pl_<model> = LoRA r=16 alpha=32 on every projection, lr %g; "+
		"<task>_full_<n>pl_<model> = every weight fine-tuned, lr %s. Both: %d epochs, batch 16, cosine schedule with 5 %% warm-up, float32, CPU. "+
		"Metric on the same %d test examples for every run of a task (a seeded, label-balanced draw; classification: accuracy with the answer "+
		"constrained to the label set by scoring every label; CoNLL-2003: entity F1 of greedy decoding). Speed: *_train_examples_per_s = "+
		"training examples x epochs / training wall time (validation included); *_eval_examples_per_s = test examples / evaluation wall time "+
		"(zero_shot: the base model; lora/full: the fine-tuned model, LoRA unmerged). One run each, on a machine doing nothing else "+
		"as far as the bench knows.", c.loraLR, strings.Join(lrs, ", "), c.epochs, c.evalN)
	res := bench.NewResult("models", cmd, method)
	var skipped []string
	for _, m := range c.models {
		short := bench.ModelTag(m)
		for _, tn := range c.tasks {
			t, err := task.Load(tn)
			if err != nil {
				return err
			}
			zeroShot := false
			for _, n := range c.budgets {
				for _, meth := range c.methods {
					key := fmt.Sprintf("%s/%s/%s/%d", m, tn, meth, n)
					if c.skipped(key) {
						skipped = append(skipped, key)
						continue
					}
					r, err := c.tune(m, t, meth, n, !zeroShot)
					if err != nil {
						return fmt.Errorf("%s: %w", key, err)
					}
					if !zeroShot {
						zeroShot = true
						res.Add(tn+"_zero_shot_"+short, r.Metric, r.Before, nil, "", true)
						res.Add(tn+"_zero_shot_eval_examples_per_s_"+short, "examples/s", perSec(r.EvalN, r.BeforeWall), nil, "", true)
					}
					name := fmt.Sprintf("%s_%s_%dpl", tn, meth, n)
					res.Add(name+"_"+short, r.Metric, r.After, nil, "", true)
					res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%d training examples, %d steps, loss %.3f -> %.3f, %d test examples, run wall %s",
						r.TrainN, r.Train.Steps, r.Train.FirstLoss, r.Train.FinalLoss, r.EvalN, r.Wall.Round(time.Second))
					res.Add(name+"_train_examples_per_s_"+short, "examples/s", perSec(r.TrainN*c.epochs, r.Train.Wall), nil, "", true)
					res.Add(name+"_eval_examples_per_s_"+short, "examples/s", perSec(r.EvalN, r.AfterWall), nil, "", true)
				}
			}
		}
	}
	if len(skipped) > 0 {
		res.Method += " Not measured (-skip): " + strings.Join(skipped, ", ") + "."
	}
	if merge != "" {
		if err := res.MergeFile(merge); err != nil {
			return err
		}
	}
	res.Table(os.Stdout)
	if err := res.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", out)
	return nil
}

// tune runs (or reuses) one fine-tuning run.
func (c config) tune(modelName string, t *task.Task, method string, perLabel int, before bool) (*tune.Result, error) {
	groups := len(t.Labels)
	if len(t.EntityTypes) > 0 {
		groups = len(t.EntityTypes)
	}
	s := settings{Model: modelName, Task: t.Name, Method: method, PerLabel: perLabel, Train: perLabel * max(groups, 1),
		Eval: c.evalN, Epochs: c.epochs, LR: c.loraLR, Seed: 1, Threads: c.threads, Before: before}
	if method == "full" {
		s.LR = c.fullLR[modelName]
	}
	dir := filepath.Join(c.runs, fmt.Sprintf("%s-%s-%s-%d", bench.ModelTag(modelName), t.Name, method, perLabel))
	if !c.fresh {
		if r, ok, err := reuse(dir, s); err != nil || ok {
			if ok {
				fmt.Fprintf(os.Stderr, "== %s: reusing the finished run\n", dir)
			}
			return r, err
		}
	}
	fmt.Fprintf(os.Stderr, "== %s: %d training examples, %d test examples\n", dir, s.Train, s.Eval)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	r, err := tune.Run(context.Background(), tune.Config{
		Model: modelName, Task: t, Out: dir, Device: torch.CPU, TrainExamples: s.Train, EvalExamples: s.Eval,
		Recipe: finetune.Recipe{Epochs: s.Epochs, LR: s.LR, Seed: s.Seed, Full: method == "full"}, SkipBefore: !before, Log: os.Stderr,
	})
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteJSON(filepath.Join(dir, "bench-settings.json"), s); err != nil {
		return nil, err
	}
	return r, nil
}

// reuse reads a finished run in dir if it was made under the same settings.
func reuse(dir string, s settings) (*tune.Result, bool, error) {
	var got settings
	if err := readJSON(filepath.Join(dir, "bench-settings.json"), &got); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if got != s {
		return nil, false, nil
	}
	var r tune.Result
	if err := readJSON(filepath.Join(dir, "result.json"), &r); err != nil {
		return nil, false, err
	}
	if r.Train == nil {
		return nil, false, fmt.Errorf("%s/result.json: no training section", dir)
	}
	return &r, true, nil
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func (c config) skipped(key string) bool {
	for _, p := range c.skip {
		if ok, err := path.Match(p, key); err == nil && ok {
			return true
		}
	}
	return false
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range split(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-budgets: %q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func rates(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, f := range split(s) {
		name, v, ok := strings.Cut(f, "=")
		lr, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || lr <= 0 {
			return nil, fmt.Errorf("-full-lr: %q is not model=positive rate", f)
		}
		out[name] = lr
	}
	return out, nil
}
