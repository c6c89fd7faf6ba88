package coldstart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// spamCatalog is a folder holding a catalog (cat/) of one dataset, 140 text messages
// labelled ham or spam.
func spamCatalog(t *testing.T) string {
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("label\ttext\n")
	for i := range 70 {
		fmt.Fprintf(&b, "ham\tsee you at %d tonight for dinner\nspam\tfree prize number %d, text WIN now to claim\n", i, i)
	}
	write(t, filepath.Join(root, "cat", "sms", "messages.tsv"), b.String())
	return root
}

// TestColdStartRun: a description and a catalog in, on pioneer-nano: the task folder,
// the baseline, candidates scored on the frozen set, the best as v0 when it beats the
// base model, an outcome; a rerun trains nothing and returns the same outcome.
func TestColdStartRun(t *testing.T) {
	root := spamCatalog(t)
	steps := 0
	cfg := coldstart.Config{Manual: true, Description: "classify text messages as spam or not", Catalogs: []string{filepath.Join(root, "cat")},
		Base: data.NanoModel, Out: filepath.Join(root, "run"), Device: torch.CPU, Iterations: 1, EvalSize: 20,
		Recipe: finetune.Recipe{Epochs: 2, Batch: 16, LR: 5e-3, Seed: 1}, Progress: func(training.Progress) { steps++ }}
	// With manual approval the run stops at the task folder; a person edits the prompt;
	// the run goes on with the edited task.
	o, err := coldstart.Run(context.Background(), cfg)
	if err != nil || o.Stopped != coldstart.AwaitingApproval || steps != 0 {
		t.Fatalf("manual approval: %+v %v, %d steps trained", o, err, steps)
	}
	y := filepath.Join(cfg.Out, "task", "task.yaml")
	b0, err := os.ReadFile(y)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b0), "label:", "kind of message:", 1)
	if edited == string(b0) {
		t.Fatalf("task.yaml has no prompt to edit: %s", b0)
	}
	write(t, y, edited)
	cfg.Manual = false
	o, err = coldstart.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Candidates) != 2 || o.Best == nil || o.Task == "" || o.Metric != "accuracy" {
		t.Fatalf("outcome %+v", o)
	}
	for _, c := range o.Candidates {
		if c.Metric < 0 || c.Metric > 1 || c.Curation.Out == 0 || c.Tokens == 0 {
			t.Fatalf("candidate %+v", c)
		}
		if _, err := os.Stat(filepath.Join(cfg.Out, c.Dir, "eval.json")); err != nil {
			t.Fatal(err)
		}
	}
	if o.Best.Metric > o.Baseline {
		if o.Version != "v0" {
			t.Fatalf("the best candidate beats the base model but no v0: %+v", o)
		}
		if _, err := os.Stat(filepath.Join(cfg.Out, "versions", "v0", "adapter_model.safetensors")); err != nil {
			t.Fatal(err)
		}
	} else if o.Version != "" {
		t.Fatalf("a version made from a candidate no better than the base model: %+v", o)
	}
	for _, f := range []string{"task/task.yaml", "task/eval.jsonl", "outcome.json", "lineage.jsonl", "report.md"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Fatalf("run folder lacks %s", f)
		}
	}
	report, err := os.ReadFile(filepath.Join(cfg.Out, "report.md"))
	if err != nil || !strings.Contains(string(report), "| sms (") || !strings.Contains(string(report), "iter1/A-small") || !strings.Contains(string(report), "kind of message:") ||
		!strings.Contains(string(report), "Frozen evaluation set: 20 examples") {
		t.Fatalf("report.md: %s %v", report, err)
	}
	t.Logf("baseline %.3f, candidates %.3f / %.3f, version %q", o.Baseline, o.Candidates[0].Metric, o.Candidates[1].Metric, o.Version)
	steps = 0
	again, err := coldstart.Run(context.Background(), cfg)
	if err != nil || steps != 0 || again.Best.Metric != o.Best.Metric || again.Version != o.Version {
		t.Fatalf("rerun: %d steps trained, %+v, %v", steps, again, err)
	}
	cfg.EvalSize = 30
	if _, err := coldstart.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "eval_size") {
		t.Fatalf("a rerun with other settings: %v", err)
	}
}

// TestColdStartMCTS: the Monte-Carlo search trains pipelines one change apart and stops
// at the target.
func TestColdStartMCTS(t *testing.T) {
	root := spamCatalog(t)
	cfg := coldstart.Config{Description: "classify text messages as spam or not", Catalogs: []string{filepath.Join(root, "cat")},
		Base: data.NanoModel, Out: filepath.Join(root, "run"), Device: torch.CPU, Iterations: 2, EvalSize: 20, Search: coldstart.SearchMCTS,
		Target: 0.99, Recipe: finetune.Recipe{Epochs: 1, Batch: 16, LR: 1e-5, Seed: 1}} // a rate too low to reach the target: the whole budget runs
	o, err := coldstart.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Candidates) != 4 || !strings.HasPrefix(o.Candidates[0].Name, "search/n00") {
		t.Fatalf("candidates %+v", o.Candidates)
	}
	if o.Reached || o.Stopped != "4 candidates done" {
		t.Fatalf("outcome %+v", o)
	}
	seen := map[string]bool{}
	for _, c := range o.Candidates {
		key := fmt.Sprintf("%d %d %g %d %t", c.TrainN, c.Recipe.Epochs, c.Recipe.LR, c.Recipe.Rank, c.Recipe.Full)
		if seen[key] {
			t.Fatalf("candidate %s repeats a pipeline: %+v", c.Name, c)
		}
		seen[key] = true
	}
	t.Logf("%d candidates, best %s %.3f, %s", len(o.Candidates), o.Best.Name, o.Best.Metric, o.Stopped)
	if _, err := coldstart.Run(context.Background(), coldstart.Config{Description: "x", Base: data.NanoModel, Out: t.TempDir(), Search: "beam"}); err == nil ||
		!strings.Contains(err.Error(), "greedy or mcts") {
		t.Fatalf("an unknown search: %v", err)
	}
}

// TestColdStartSearchesTheStrategy: the second greedy round tries every weight beside
// LoRA; a candidate trained in every weight is a model folder that loads, and the base
// weights are back after it: the LoRA candidate trained next starts from the same loss
// as the first round's candidate on the same data (the loss of the base model on the
// same first batch).
func TestColdStartSearchesTheStrategy(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("label\ttext\n")
	for i := range 70 { // one message in five labelled the other way: no candidate is perfect
		ham, spam := "ham", "spam"
		if i%5 == 0 {
			ham, spam = spam, ham
		}
		fmt.Fprintf(&b, "%s\tsee you at %d tonight for dinner\n%s\tfree prize number %d, text WIN now to claim\n", ham, i, spam, i)
	}
	write(t, filepath.Join(root, "cat", "sms", "messages.tsv"), b.String())
	cfg := coldstart.Config{Description: "classify text messages as spam or not", Catalogs: []string{filepath.Join(root, "cat")},
		Base: data.NanoModel, Out: filepath.Join(root, "run"), Device: torch.CPU, Iterations: 2, EvalSize: 20, Target: 1,
		Recipe: finetune.Recipe{Epochs: 1, Batch: 16, LR: 5e-3, Seed: 1}}
	o, err := coldstart.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	firstLoss := func(c coldstart.Candidate) float64 {
		t.Helper()
		lines := strings.SplitN(string(must(os.ReadFile(filepath.Join(cfg.Out, c.Dir, "adapter", "metrics.jsonl")))), "\n", 2)
		var m struct {
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m.Step != 1 {
			t.Fatalf("%s's first metrics line %q: %v", c.Name, lines[0], err)
		}
		return m.Loss
	}
	var full, after, same *coldstart.Candidate
	for i, c := range o.Candidates {
		t.Logf("%s full=%v lr %g n %d: %.3f, first loss %.6f", c.Name, c.Recipe.Full, c.Recipe.LR, c.TrainN, c.Metric, firstLoss(c))
		switch {
		case c.Recipe.Full:
			full = &o.Candidates[i]
		case full != nil && after == nil:
			after = &o.Candidates[i]
		}
	}
	if len(o.Candidates) != 4 || full == nil || full.Name != "iter2/full" || math.Abs(full.Recipe.LR-5e-4) > 1e-12 || after == nil {
		t.Fatalf("want 4 candidates, the second round's first in every weight at a tenth of the rate, then one with LoRA: %+v", o.Candidates)
	}
	m, err := model.Load(filepath.Join(cfg.Out, full.Dir, "adapter"), torch.CPU, torch.Float32)
	if err != nil {
		t.Fatalf("the candidate trained in every weight is not a model folder that loads: %v", err)
	}
	m.Close()
	for i, c := range o.Candidates[:2] {
		if c.TrainN == after.TrainN {
			same = &o.Candidates[i]
		}
	}
	if same == nil {
		t.Fatalf("no first-round candidate on %s's data", after.Name)
	}
	if a, b := firstLoss(*after), firstLoss(*same); math.Abs(a-b) > 1e-5 {
		t.Fatalf("%s starts from loss %.6f, %s on the same data from %.6f: it was not trained from the base weights", after.Name, a, same.Name, b)
	}
	if _, err := coldstart.Run(context.Background(), coldstart.Config{Description: "x", Base: data.NanoModel, Out: t.TempDir(), Strategy: "qlora"}); err == nil ||
		!strings.Contains(err.Error(), "search, lora or full") {
		t.Fatalf("an unknown strategy: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
