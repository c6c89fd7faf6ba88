// Command classify measures classification of a 135M model: SmolLM2-135M-Instruct,
// zero-shot or with a fine-tuned adapter (-adapter), on the first -n examples of a bundled task's test split (Banking77, 77
// labels, by default). It compares infer.ClassifyBest (best-first search of the label
// tree, what task.Evaluate uses) at several widths against infer.Classify (every label
// scored: the whole tree packed after each prompt), on the prompts and label tokens
// task.Evaluate builds. The ways alternate in every round; figures are examples per
// second over the median round, with the answers compared (they must be the same labels)
// and the tree nodes the search ran per example. It writes bench/results/classify_cpu.json
// and prints a table.
//
//	bash scripts/fetch-smollm2.sh && go run ./bench/classify
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

func main() {
	taskName := flag.String("task", "banking77", "bundled classification task")
	n := flag.Int("n", 64, "test examples")
	rounds := flag.Int("rounds", 2, "rounds, each running every way once")
	batch := flag.Int("batch", 16, "prompts per batch")
	widths := flag.String("widths", "1,16", "search widths to measure (16 is the default)")
	adapter := flag.String("adapter", "", "PEFT adapter folder to apply (a fine-tuned classifier; figures then end in _lora_smollm2)")
	out := flag.String("out", "bench/results/classify_cpu.json", "result file")
	flag.Parse()
	var ws []int
	for _, f := range strings.Split(*widths, ",") {
		w, err := strconv.Atoi(f)
		if err != nil || w <= 0 {
			fmt.Fprintln(os.Stderr, "bench/classify: bad -widths", *widths)
			os.Exit(2)
		}
		ws = append(ws, w)
	}
	if err := run(*taskName, *n, *rounds, *batch, ws, *adapter, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/classify:", err)
		os.Exit(1)
	}
}

func run(taskName string, n, rounds, batch int, widths []int, adapter, out string) error {
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
	suffix, what := "_smollm2", "zero-shot"
	if adapter != "" {
		set, err := lora.Load(adapter, p.LM)
		if err != nil {
			return err
		}
		defer set.Close()
		suffix, what = "_lora_smollm2", "with the LoRA adapter "+adapter
	}
	prompts := make([][]int, len(test))
	for i, ex := range test {
		if prompts[i], err = p.Tokenizer.Encode(t.PromptText(ex.Text), false); err != nil {
			return err
		}
	}
	labels := make([][]int, len(t.Labels))
	for j, l := range t.Labels {
		if labels[j], err = p.Tokenizer.Encode(t.LabelTarget(l), false); err != nil {
			return err
		}
		labels[j] = append(labels[j], p.FirstEOS())
	}
	timesAll := []float64{}
	timesW := make([][]float64, len(widths))
	var all []infer.Classification
	best := make([][]infer.Best, len(widths))
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		if all, err = infer.Classify(p.LM, prompts, labels, batch); err != nil {
			return err
		}
		timesAll = append(timesAll, time.Since(t0).Seconds())
		for i, w := range widths {
			t0 := time.Now()
			if best[i], err = infer.ClassifyBest(p.LM, prompts, labels, batch, w); err != nil {
				return err
			}
			timesW[i] = append(timesW[i], time.Since(t0).Seconds())
		}
		fmt.Fprintf(os.Stderr, "round %d: every label %.1f s, search %v s\n", r, timesAll[r], lastOf(timesW))
	}
	correct := 0
	for i, c := range all {
		if t.Labels[c.Label] == test[i].Label {
			correct++
		}
	}
	res := bench.NewResult("classify_cpu", "go run ./bench/classify",
		fmt.Sprintf("SmolLM2-135M-Instruct (its Q4_1 GGUF, float32 on 2 CPU threads), %s, the first %d %s test examples (%d labels, each ending with end-of-sequence), batch %d: infer.ClassifyBest at widths %v against infer.Classify (every label, the tree packed after the prompt); the ways alternate, median of %d rounds",
			what, len(test), taskName, len(t.Labels), batch, widths, rounds))
	ref := float64(len(test)) / bench.Median(timesAll)
	for i, w := range widths {
		same, expanded := 0, 0
		for k, b := range best[i] {
			if b.Label == all[k].Label {
				same++
			}
			expanded += b.Expanded
		}
		if same != len(test) {
			return fmt.Errorf("width %d: the search disagrees with Classify on %d of %d examples", w, len(test)-same, len(test))
		}
		name := fmt.Sprintf("%s_eval_examples_per_s_width%d%s", taskName, w, suffix)
		res.Add(name, "examples/s", float64(len(test))/bench.Median(timesW[i]), &ref, "every label scored (infer.Classify)", true)
		res.Add(fmt.Sprintf("%s_nodes_run_per_example_width%d%s", taskName, w, suffix), "nodes", float64(expanded)/float64(len(test)), nil, "", false)
	}
	res.Add(taskName+"_label_tree_nodes"+suffix, "nodes", float64(treeNodes(labels)), nil, "", false)
	res.Add(taskName+"_accuracy"+suffix, "accuracy", float64(correct)/float64(len(test)), nil, "", true)
	res.Table(os.Stdout)
	return res.Write(out)
}

func lastOf(v [][]float64) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.1f", x[len(x)-1]))
	}
	return out
}

// treeNodes counts the proper prefixes of the labels (the nodes Classify packs).
func treeNodes(labels [][]int) int {
	seen := map[string]bool{}
	for _, l := range labels {
		for k := 1; k < len(l); k++ {
			seen[fmt.Sprint(l[:k])] = true
		}
	}
	return len(slices.Collect(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}))
}
