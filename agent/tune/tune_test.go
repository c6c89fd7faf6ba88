package tune_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/tune"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

const nano = "../../data/models/pioneer-nano"

// tinyTask writes a three-label task whose label is given away by a keyword.
func tinyTask(t *testing.T) *task.Task {
	t.Helper()
	dir := t.TempDir()
	words := map[string][]string{"weather": {"rain", "sunny", "cold", "wind", "snow"}, "music": {"song", "guitar", "album", "band", "piano"},
		"food": {"pizza", "bread", "soup", "apple", "cheese"}}
	var train, test []string
	i := 0
	for label, ws := range words {
		for k, w := range ws {
			line := `{"id": "` + label + string(rune('a'+k)) + `", "text": "tell me about the ` + w + `", "label": "` + label + `"}`
			if k < 4 {
				train = append(train, line)
			} else {
				test = append(test, line)
			}
			i++
		}
	}
	os.WriteFile(filepath.Join(dir, "train.jsonl"), []byte(strings.Join(train, "\n")), 0o644)
	os.WriteFile(filepath.Join(dir, "test.jsonl"), []byte(strings.Join(test, "\n")), 0o644)
	os.WriteFile(filepath.Join(dir, "task.yaml"), []byte(`name: topics
type: classification
labels: [weather, music, food]
prompt: "{text}\ntopic:"
data: {train: train.jsonl, validation: train.jsonl, test: test.jsonl}
`), 0o644)
	tk, err := task.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestTuneFull fine-tunes every weight: the run folder holds a model folder (not an
// adapter) that loads on its own and gives the predictions after.json records. The
// evaluation before training is skipped: no before.json, and the report says so.
func TestTuneFull(t *testing.T) {
	tk := tinyTask(t)
	out := t.TempDir()
	res, err := tune.Run(context.Background(), tune.Config{Model: nano, Task: tk, Out: out, Device: torch.CPU,
		Recipe: finetune.Recipe{Epochs: 1, Batch: 4, LR: 1e-3, Seed: 3, Full: true}, SkipBefore: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.BeforeSkipped || res.BeforeWall != 0 || res.AfterWall <= 0 {
		t.Fatalf("skipped before: %v, before wall %v, after wall %v", res.BeforeSkipped, res.BeforeWall, res.AfterWall)
	}
	if _, err := os.Stat(filepath.Join(out, "before.json")); err == nil {
		t.Fatal("before.json written though the evaluation before training was skipped")
	}
	if report, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(report), "| before (base model) | not measured |") {
		t.Fatalf("report.md does not say the base model was not measured:\n%s", report)
	}
	if res.Adapter != filepath.Join(out, "model") {
		t.Fatalf("result names %s, want the model folder", res.Adapter)
	}
	requireFiles(t, out, "model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/metrics.jsonl", "result.json", "report.md")
	if _, err := os.Stat(filepath.Join(out, "adapter")); err == nil {
		t.Fatal("a full fine-tune wrote an adapter folder")
	}
	m, err := model.Load(res.Adapter, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(filepath.Join(res.Adapter, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	test, _ := tk.Split("test")
	again, err := tk.Evaluate(context.Background(), m, tok, test, task.EvalOptions{EOS: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Value != res.After {
		t.Fatalf("the model folder scores %v, the run recorded %v", again.Value, res.After)
	}
	if report, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(report), "pioneer generate --model "+res.Adapter) {
		t.Fatalf("report.md does not show how to use the model folder:\n%s", report)
	}
}

// TestTune runs the whole job on pioneer-nano and checks that what it wrote is
// consistent: the adapter, loaded afresh, gives the predictions after.json records.
func TestTune(t *testing.T) {
	tk := tinyTask(t)
	out := t.TempDir()
	res, err := tune.Run(context.Background(), tune.Config{Model: nano, Task: tk, Out: out, Device: torch.CPU,
		Recipe: finetune.Recipe{Epochs: 4, Batch: 4, LR: 5e-3, Seed: 3}, EvalMetric: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainN != 12 || res.EvalN != 3 || res.Train.Steps != 12 || res.BeforeSkipped || res.BeforeWall <= 0 || res.AfterWall <= 0 {
		t.Fatalf("result %+v", res)
	}
	requireFiles(t, out, "before.json", "after.json", "result.json", "report.md", "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/metrics.jsonl")
	metricsLog, _ := os.ReadFile(filepath.Join(out, "adapter", "metrics.jsonl"))
	if !strings.Contains(string(metricsLog), `"eval_accuracy"`) {
		t.Fatalf("the task metric was not logged during training:\n%s", metricsLog)
	}
	var after task.Result
	b, _ := os.ReadFile(filepath.Join(out, "after.json"))
	if err := json.Unmarshal(b, &after); err != nil || after.Value != res.After {
		t.Fatalf("after.json: %v (%v)", after.Value, err)
	}
	m, err := model.Load(nano, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	set, err := lora.Load(res.Adapter, m)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	tok, _ := tokenizer.Load(filepath.Join(nano, "tokenizer.json"))
	defer tok.Close()
	test, _ := tk.Split("test")
	again, err := tk.Evaluate(context.Background(), m, tok, test, task.EvalOptions{EOS: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range test {
		if again.Predictions[i].Label != after.Predictions[i].Label {
			t.Fatalf("example %d: reloaded adapter says %q, after.json %q", i, again.Predictions[i].Label, after.Predictions[i].Label)
		}
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(report), "topics") || !strings.Contains(string(report), res.Adapter) {
		t.Fatalf("report:\n%s", report)
	}
}

func TestSampleIsBalancedAndSeeded(t *testing.T) {
	tk, err := task.Load("banking77")
	if err != nil {
		t.Fatal(err)
	}
	train, err := tk.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	a := tk.Sample(train, 770, 1)
	b := tk.Sample(train, 770, 1)
	c := tk.Sample(train, 770, 2)
	count := map[string]int{}
	for _, ex := range a {
		count[ex.Label]++
	}
	if len(a) != 770 || len(count) != 77 {
		t.Fatalf("%d examples over %d labels", len(a), len(count))
	}
	for l, n := range count {
		if n != 10 {
			t.Fatalf("label %s has %d examples", l, n)
		}
	}
	same := true
	for i := range a {
		if a[i].ID != b[i].ID {
			t.Fatal("same seed, different draw")
		}
		same = same && a[i].ID == c[i].ID
	}
	if same {
		t.Fatal("different seeds gave the same draw")
	}
}

// requireFiles fails the test unless each file exists under dir.
func requireFiles(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("run folder lacks %s", f)
		}
	}
}
