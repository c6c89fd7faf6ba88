// Command nano measures pioneer-nano, Pioneer's embedded base model: its size, the tokens
// it was pretrained on (from its model card), its held-out perplexity (measured here),
// and the test accuracy of a LoRA fine-tune on the bundled Banking77 and CLINC150 tasks,
// against the same architecture trained from random initialisation on the same budget
// (same examples, steps and schedule; every weight trained, since adapters on random
// weights would be a straw man). Writes bench/results/nano.json.
//
//	go run ./bench/nano [-device cuda] [-epochs 3] [-train-examples 0] [-eval-examples 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/tune"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

var (
	runs  string
	small int
)

func main() {
	device := flag.String("device", "cpu", "cpu, cuda or auto")
	out := flag.String("out", "bench/results/nano.json", "result file")
	commit := flag.String("commit", "", "commit to record (default: git rev-parse HEAD)")
	epochs := flag.Int("epochs", 3, "fine-tuning epochs")
	trainN := flag.Int("train-examples", 0, "training examples per task (0: the whole training split)")
	evalN := flag.Int("eval-examples", 0, "test examples per task (0: the whole test split)")
	lr := flag.Float64("lr", 2e-3, "LoRA peak learning rate")
	refLR := flag.Float64("reference-lr", 1e-3, "learning rate of full fine-tuning (the from-scratch reference, and pioneer-nano's full fine-tune)")
	flag.IntVar(&small, "small", 1000, "also measure with this many training examples per task (-1: skip)")
	merge := flag.String("merge", "", "comma-separated result files to merge into -out (their figures, in order) instead of measuring")
	tasks := flag.String("tasks", "banking77,clinc150", "bundled tasks to fine-tune on")
	flag.StringVar(&runs, "runs", "runs/bench-nano", "folder for the fine-tuning runs")
	flag.Parse()
	if *merge != "" {
		if err := mergeResults(*out, strings.Split(*merge, ",")); err != nil {
			fmt.Fprintln(os.Stderr, "bench/nano:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*device, *out, *commit, *tasks, *epochs, *trainN, *evalN, *lr, *refLR); err != nil {
		fmt.Fprintln(os.Stderr, "bench/nano:", err)
		os.Exit(1)
	}
}

func run(device, out, commit, tasks string, epochs, trainN, evalN int, lr, refLR float64) error {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	nanoDir, err := data.ResolveModel(data.NanoModel) // the embedded copy, as users get it
	if err != nil {
		return err
	}
	card, err := data.ReadNanoCard()
	if err != nil {
		return err
	}
	cmd := "go run ./bench/nano"
	if device != "cpu" {
		cmd += " -device " + device
	}
	method := fmt.Sprintf("<task>_accuracy: pioneer = LoRA r=16 alpha=32 on every projection of pioneer-nano, lr %g; <task>_accuracy_full_ft: "+
		"pioneer = every weight of pioneer-nano fine-tuned, lr %g; reference (both) = the same architecture from random initialisation "+
		"(normal std 0.02), every weight trained, lr %g. All %d epochs over the %s (figures ending _N_examples: a seeded, label-balanced draw of N), "+
		"batch 16, cosine schedule with 5 %% warm-up, seed 1; accuracy on the %s with answers constrained to the label set; one run each. "+
		"Held-out perplexity: %s, windows of 256 tokens.",
		lr, refLR, refLR, epochs, orAll(trainN, "training split"), orAll(evalN, "test split"), heldoutNote)
	res := bench.NewResult("nano", cmd, method)
	if commit != "" {
		res.Commit = commit
	}
	ppl, params, err := perplexity(nanoDir, dev)
	if err != nil {
		return err
	}
	res.Add("params", "count", float64(params), nil, "", false)
	res.Add("train_tokens", "tokens", float64(card.TrainTokens), nil, "", true)
	res.Add("heldout_perplexity", "perplexity", ppl, nil, "", false)
	for _, name := range strings.Split(tasks, ",") {
		t, err := task.Load(name)
		if err != nil {
			return err
		}
		fineTune := func(random, full bool, rate float64, n int, dir string) (*tune.Result, error) {
			fmt.Fprintf(os.Stderr, "== %s, %s\n", name, dir)
			return tune.Run(context.Background(), tune.Config{
				Model: data.NanoModel, Task: t, Out: runs + "/" + name + "-" + dir, Device: dev,
				TrainExamples: n, EvalExamples: evalN, Recipe: finetune.Recipe{Epochs: epochs, LR: rate, Seed: 1, Full: full},
				RandomInit: random, Log: os.Stderr,
			})
		}
		const refName = "same architecture, random init, every weight trained, same budget"
		note := func(r *tune.Result) string {
			return fmt.Sprintf("pioneer-nano before fine-tuning: %.4f; %d training examples, %d steps, %d test examples", r.Before, r.TrainN, r.Train.Steps, r.EvalN)
		}
		for _, n := range []int{trainN, small} {
			if n < 0 {
				continue
			}
			suffix, tag := "", "all"
			if n == small {
				suffix, tag = fmt.Sprintf("_%d_examples", n), fmt.Sprint(n)
			}
			lora, err := fineTune(false, false, lr, n, "pretrained-lora-"+tag)
			if err != nil {
				return err
			}
			full, err := fineTune(false, true, refLR, n, "pretrained-full-"+tag)
			if err != nil {
				return err
			}
			scratch, err := fineTune(true, true, refLR, n, "scratch-full-"+tag)
			if err != nil {
				return err
			}
			ref := scratch.After
			res.Add(name+"_accuracy"+suffix, "accuracy", lora.After, &ref, refName, true)
			res.Figures[len(res.Figures)-1].Note = "LoRA; " + note(lora)
			res.Add(name+"_accuracy_full_ft"+suffix, "accuracy", full.After, &ref, refName, true)
			res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("every weight of pioneer-nano fine-tuned, lr %g; ", refLR) + note(full)
		}
	}
	res.Table(os.Stdout)
	if err := res.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", out)
	return nil
}

const heldoutNote = "testdata/nano/heldout.txt (the last 5 % of each pretraining corpus, never trained on)"

func orAll(n int, what string) string {
	if n <= 0 {
		return "whole " + what
	}
	return fmt.Sprintf("first %d examples of a seeded, label-balanced draw from the %s", n, what)
}

// perplexity measures pioneer-nano on the held-out text, as the model card records it.
func perplexity(nanoDir string, dev torch.Device) (float64, int64, error) {
	m, err := model.Load(nanoDir, dev, torch.Float32)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	tok, err := tokenizer.Load(nanoDir + "/tokenizer.json")
	if err != nil {
		return 0, 0, err
	}
	defer tok.Close()
	b, err := os.ReadFile("testdata/nano/heldout.txt")
	if err != nil {
		return 0, 0, err
	}
	ids, err := tok.Encode(string(b), false)
	if err != nil {
		return 0, 0, err
	}
	x := make([]int32, len(ids))
	for i, v := range ids {
		x[i] = int32(v)
	}
	loss, err := training.EvalLoss(training.Full{Model: m}, x, 8, 256, 0)
	if err != nil {
		return 0, 0, err
	}
	return math.Exp(loss), m.Info().Params, nil
}

// mergeResults writes one result whose figures are those of files, in order (the
// header comes from the first).
func mergeResults(out string, files []string) error {
	var merged *bench.Result
	for _, f := range files {
		r, err := bench.ReadResult(f)
		if err != nil {
			return err
		}
		if merged == nil {
			merged = r
			continue
		}
		for _, fig := range r.Figures {
			if !slices.ContainsFunc(merged.Figures, func(g bench.Figure) bool { return g.Name == fig.Name }) {
				merged.Figures = append(merged.Figures, fig)
			}
		}
	}
	merged.Table(os.Stdout)
	return merged.Write(out)
}
