// Command classify measures classification evaluation of a 135M model: SmolLM2-135M-
// Instruct, zero-shot, on the first -n examples of a bundled task's test split (Banking77,
// 77 labels, by default), evaluated by task.Evaluate with the best-first search of the
// label tree (infer.ClassifyBest, the default) against scoring every label (the whole
// tree packed after each prompt, infer.Classify). The two alternate in every round; the
// figure is examples per second over the median round, and the answers of the two are
// compared (they must be the same labels). It writes bench/results/classify_cpu.json and
// prints a table.
//
//	bash scripts/fetch-smollm2.sh && go run ./bench/classify
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

func main() {
	taskName := flag.String("task", "banking77", "bundled classification task")
	n := flag.Int("n", 64, "test examples")
	rounds := flag.Int("rounds", 3, "rounds, each evaluating both ways")
	batch := flag.Int("batch", 16, "prompts per batch")
	out := flag.String("out", "bench/results/classify_cpu.json", "result file")
	flag.Parse()
	if err := run(*taskName, *n, *rounds, *batch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/classify:", err)
		os.Exit(1)
	}
}

func run(taskName string, n, rounds, batch int, out string) error {
	t, err := task.Load(taskName)
	if err != nil {
		return err
	}
	if !t.Constrained() {
		return fmt.Errorf("%s is not a classification task", taskName)
	}
	test, err := t.Split("test")
	if err != nil {
		return err
	}
	test = test[:min(n, len(test))]
	p, err := model.Open(data.SmolLM2, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return err
	}
	defer p.Close()
	eval := func(all bool) (*task.Result, float64, error) {
		t0 := time.Now()
		r, err := t.Evaluate(context.Background(), p.LM, p.Tokenizer, test, task.EvalOptions{Batch: batch, EOS: p.EOS, PadID: p.Pad, ScoreAllLabels: all})
		return r, time.Since(t0).Seconds(), err
	}
	var ts, ta []float64
	var rs, ra *task.Result
	for r := 0; r < rounds; r++ {
		var ds, da float64
		if rs, ds, err = eval(false); err != nil {
			return err
		}
		if ra, da, err = eval(true); err != nil {
			return err
		}
		ts, ta = append(ts, ds), append(ta, da)
		fmt.Fprintf(os.Stderr, "round %d: search %.1f s, every label %.1f s\n", r, ds, da)
	}
	same := 0
	for i := range rs.Predictions {
		if rs.Predictions[i].Output == ra.Predictions[i].Output {
			same++
		}
	}
	res := bench.NewResult("classify_cpu", "go run ./bench/classify",
		fmt.Sprintf("task.Evaluate of SmolLM2-135M-Instruct (its Q4_1 GGUF, float32 on 2 CPU threads), zero-shot, on the first %d %s test examples (%d labels), batch %d; best-first search of the label tree against every label scored (the tree packed after the prompt); the two alternate, median of %d rounds",
			len(test), taskName, len(t.Labels), batch, rounds))
	ref := float64(len(test)) / bench.Median(ta)
	res.Add(taskName+"_eval_examples_per_s_smollm2", "examples/s", float64(len(test))/bench.Median(ts), &ref, "every label scored (packed label tree)", true)
	res.Add(taskName+"_same_answers_smollm2", "examples", float64(same), nil, "", true)
	res.Add(taskName+"_zero_shot_accuracy_smollm2", rs.Metric, rs.Value, nil, "", true)
	res.Table(os.Stdout)
	if same != len(test) {
		return fmt.Errorf("the two ways disagree on %d of %d examples", len(test)-same, len(test))
	}
	return res.Write(out)
}
