package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
)

func TestPretrainCommand(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("to be or not to be, that is the question. ", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	args := []string{"pioneer", "pretrain", "--data", text, "--out", out, "--steps", "8", "--batch", "2", "--seq", "16",
		"--hidden", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32", "--warmup", "2",
		"--eval-every", "4", "--checkpoint-every", "4", "--sample", "20", "--device", "cpu"}
	if err := newApp().Run(args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "metrics.jsonl", "result.json", "checkpoints/latest"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("run folder lacks %s", f)
		}
	}
	var res struct {
		Steps     int     `json:"steps"`
		FinalLoss float64 `json:"final_loss"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "result.json"))
	if err := json.Unmarshal(b, &res); err != nil || res.Steps != 8 {
		t.Fatalf("result.json: %s (%v)", b, err)
	}
	// Resuming a finished run is a no-op that still succeeds.
	if err := newApp().Run(append(args, "--resume")); err != nil {
		t.Fatal(err)
	}
}

func TestPretrainCommandRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", filepath.Join(dir, "missing.txt")}, "no such file"},
		{[]string{"--device", "tpu"}, "unknown device"},
		{[]string{"--dtype", "int3"}, "unknown dtype"},
		{[]string{"--heldout", "1.5"}, "--heldout"},
		{[]string{"--heads", "3", "--kv-heads", "2"}, "multiple"},
		{[]string{"--steps", "0"}, "--steps must be between 1"},
	} {
		args := append([]string{"pioneer", "pretrain", "--out", filepath.Join(dir, "x"), "--sample", "0"}, c.args...)
		err := newApp().Run(args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v: err = %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

const tinyGPT2 = "../../../shared/data/models/tiny-random-gpt2"

func TestGenerateAndInfoCommands(t *testing.T) {
	if _, err := os.Stat(tinyGPT2); err != nil {
		t.Skip("shared data not present")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	in := filepath.Join(dir, "in.jsonl")
	_ = os.WriteFile(in, []byte("{\"prompt\": \"Hello world\"}\n\n{\"prompt\": \"A longer prompt here\"}\n"), 0o644)
	err := newApp().Run([]string{"pioneer", "generate", "--model", tinyGPT2, "--device", "cpu", "--input", in,
		"--prompt", "Hi, there", "--max-new-tokens", "5", "--output", out})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d output lines:\n%s", len(lines), b)
	}
	var rec struct {
		Prompt     string `json:"prompt"`
		Tokens     []int  `json:"tokens"`
		StopReason string `json:"stop_reason"`
	}
	// a prompt keeps its comma (no splitting of repeatable flags)
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.Prompt != "Hi, there" || rec.StopReason == "" {
		t.Fatalf("first line %s (%v)", lines[0], err)
	}
	// the same with quantized weights
	out8 := filepath.Join(dir, "out8.jsonl")
	if err := newApp().Run([]string{"pioneer", "generate", "--model", tinyGPT2, "--device", "cpu", "--quantized", "--prompt", "Hi, there",
		"--max-new-tokens", "5", "--output", out8}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out8); err != nil || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("--quantized: output %q (%v), want one line", b, err)
	}
	if err := newApp().Run([]string{"pioneer", "info", "--model", tinyGPT2}); err != nil {
		t.Fatal(err)
	}
	// a tokenizer that does not belong to the model
	mixed := filepath.Join(dir, "mixed")
	_ = os.MkdirAll(mixed, 0o755)
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, _ := os.ReadFile(filepath.Join("../../testdata/models/llama", f))
		_ = os.WriteFile(filepath.Join(mixed, f), b, 0o644)
	}
	tok, _ := os.ReadFile(filepath.Join(tinyGPT2, "tokenizer.json"))
	_ = os.WriteFile(filepath.Join(mixed, "tokenizer.json"), tok, 0o644)
	err = newApp().Run([]string{"pioneer", "generate", "--model", mixed, "--device", "cpu", "--prompt", "x"})
	if err == nil || !strings.Contains(err.Error(), "do not belong together") {
		t.Fatalf("mismatched tokenizer: %v", err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	_ = os.WriteFile(bad, []byte("{\"prompt\": \"ok\"}\n{oops\n"), 0o644)
	err = newApp().Run([]string{"pioneer", "generate", "--model", tinyGPT2, "--device", "cpu", "--input", bad})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Fatalf("malformed input: %v", err)
	}
	err = newApp().Run([]string{"pioneer", "info", "--model", filepath.Join(dir, "nothing")})
	if err == nil {
		t.Fatal("info on a missing folder")
	}
}

func TestGenerateWithChatTemplate(t *testing.T) {
	if _, err := os.Stat(tinyGPT2); err != nil {
		t.Skip("shared data not present")
	}
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(tinyGPT2, f))
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	tc, _ := os.ReadFile("../../testdata/chat/chatml_tokenizer_config.json")
	_ = os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644)
	in := filepath.Join(dir, "in.jsonl")
	_ = os.WriteFile(in, []byte(`{"messages": [{"role": "user", "content": "Hi there"}]}`+"\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	err := newApp().Run([]string{"pioneer", "generate", "--model", dir, "--device", "cpu", "--input", in,
		"--prompt", "plain", "--chat", "--system", "Be brief.", "--max-new-tokens", "3", "--output", out})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if n := strings.Count(string(b), "\n"); n != 2 || !strings.Contains(string(b), `"messages"`) {
		t.Fatalf("output:\n%s", b)
	}
	_ = os.WriteFile(in, []byte(`{"messages": [{"content": "no role"}]}`+"\n"), 0o644)
	if err := newApp().Run([]string{"pioneer", "generate", "--model", dir, "--device", "cpu", "--input", in}); err == nil ||
		!strings.Contains(err.Error(), "no role") {
		t.Fatalf("message without role: %v", err)
	}
}

func TestTrainAndEvalCommands(t *testing.T) {
	if _, err := os.Stat(tinyGPT2); err != nil {
		t.Skip("shared data not present")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "train.jsonl")
	var lines []string
	for i := 0; i < 12; i++ {
		lines = append(lines, fmt.Sprintf(`{"prompt": "count %d:", "completion": " %d"}`, i, i+1))
	}
	_ = os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	cfg := filepath.Join(dir, "train.yaml")
	_ = os.WriteFile(cfg, []byte("model: "+tinyGPT2+"\ndata: "+data+"\neval: "+data+"\nlora-targets: c_attn,c_fc\nsteps: 4\nbatch: 4\nlr: 0.01\nwarmup: 1\ndevice: cpu\n"), 0o644)
	out := filepath.Join(dir, "run")
	// --lora-r on the command line wins over the file's (absent) value; --eval-every too.
	if err := newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", out, "--lora-r", "4", "--eval-every", "2",
		"--metric", "accuracy", "--label", " 1", "--label", " 2"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "config.yaml", "result.json", "metrics.jsonl", "best/adapter_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("run folder lacks %s", f)
		}
	}
	if m, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); !strings.Contains(string(m), "eval_accuracy") {
		t.Fatalf("no task metric in metrics.jsonl:\n%s", m)
	}
	resolved, _ := os.ReadFile(filepath.Join(out, "config.yaml"))
	if !strings.Contains(string(resolved), "lora-r: 4") || !strings.Contains(string(resolved), "steps: 4") {
		t.Fatalf("config.yaml:\n%s", resolved)
	}
	if err := newApp().Run([]string{"pioneer", "eval", "--model", tinyGPT2, "--adapter", out, "--data", data, "--device", "cpu", "--max-new-tokens", "3",
		"--label", " 1", "--label", " 2", "--label", " 3"}); err != nil {
		t.Fatal(err)
	}
	// export: the merged folder's loss equals the adapter's
	merged := filepath.Join(dir, "merged")
	if err := newApp().Run([]string{"pioneer", "export", "--model", tinyGPT2, "--adapter", out, "--out", merged}); err != nil {
		t.Fatal(err)
	}
	if err := newApp().Run([]string{"pioneer", "eval", "--model", merged, "--data", data, "--device", "cpu", "--max-new-tokens", "1"}); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", full, "--full", "--steps", "2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(full, "tokenizer.json")); err != nil {
		t.Fatal("full fine-tune folder lacks the tokenizer")
	}
	// Bad input: a malformed line stops the run with its line number; a target that matches nothing.
	_ = os.WriteFile(data, []byte(lines[0]+"\n{broken\n"), 0o644)
	err := newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", filepath.Join(dir, "bad")})
	if err == nil || !strings.Contains(err.Error(), "train.jsonl:2") {
		t.Fatalf("malformed line: %v", err)
	}
	_ = os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	err = newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", filepath.Join(dir, "bad"), "--metric", "accuracy"})
	if err == nil || !strings.Contains(err.Error(), "--label") {
		t.Fatalf("accuracy without labels: %v", err)
	}
	err = newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", filepath.Join(dir, "bad"), "--metric", "entity_f1"})
	if err == nil || !strings.Contains(err.Error(), "--entity-type") {
		t.Fatalf("entity F1 without entity types: %v", err)
	}
	err = newApp().Run([]string{"pioneer", "train", "--config", cfg, "--out", filepath.Join(dir, "bad"), "--lora-targets", "q_proj"})
	if err == nil || !strings.Contains(err.Error(), "match no projection") {
		t.Fatalf("no matching target: %v", err)
	}
	// Entity F1 during training and in eval, on extraction completions.
	ents := filepath.Join(dir, "entities.jsonl")
	lines = lines[:0]
	for i := 0; i < 8; i++ {
		lines = append(lines, fmt.Sprintf(`{"prompt": "Entities in: Ann met Bo in Rome %d.\n", "completion": "PER: Ann; PER: Bo; LOC: Rome"}`, i))
	}
	_ = os.WriteFile(ents, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	run := filepath.Join(dir, "ner")
	if err := newApp().Run([]string{"pioneer", "train", "--config", cfg, "--data", ents, "--eval", ents, "--out", run, "--steps", "2", "--eval-every", "2",
		"--metric", "entity_f1", "--entity-type", "PER", "--entity-type", "LOC"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(run, "metrics.jsonl")); !strings.Contains(string(m), "eval_entity_f1") {
		t.Fatalf("no entity F1 in metrics.jsonl:\n%s", m)
	}
	if err := newApp().Run([]string{"pioneer", "eval", "--model", tinyGPT2, "--adapter", run, "--data", ents, "--device", "cpu", "--max-new-tokens", "8",
		"--entity-type", "PER", "--entity-type", "LOC"}); err != nil {
		t.Fatal(err)
	}
}

// TestPretrainWithTokenizer pretrains on pioneer-nano's tokenizer: the vocabulary comes
// from tokenizer.json, the held-out file is separate, and the written folder carries the
// tokenizer and the end-of-text token so that it loads and generates like any other.
func TestPretrainWithTokenizer(t *testing.T) {
	dir := t.TempDir()
	train, held := filepath.Join(dir, "train.txt"), filepath.Join(dir, "held.txt")
	os.WriteFile(train, []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 300)), 0o644)
	os.WriteFile(held, []byte(strings.Repeat("A lazy dog sleeps. ", 60)), 0o644)
	out := filepath.Join(dir, "run")
	nano := filepath.Join("..", "..", "data", "models", "pioneer-nano")
	args := []string{"pioneer", "pretrain", "--data", train, "--heldout-data", held, "--tokenizer", nano, "--out", out,
		"--steps", "4", "--batch", "2", "--seq", "32", "--hidden", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1",
		"--intermediate", "32", "--warmup", "1", "--eval-every", "2", "--eval-tokens", "64", "--sample", "5", "--device", "cpu"}
	if err := newApp().Run(args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("model folder lacks %s", f)
		}
	}
	var cfg struct {
		Vocab int `json:"vocab_size"`
		EOS   int `json:"eos_token_id"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Vocab != 8192 || cfg.EOS != 0 {
		t.Fatalf("config.json: %s (%v)", b, err)
	}
	if err := newApp().Run([]string{"pioneer", "generate", "--model", out, "--prompt", "The quick", "--max-new-tokens", "3",
		"--output", filepath.Join(dir, "gen.jsonl")}); err != nil {
		t.Fatal(err)
	}
}

// TestAdaptCommandsRejectBadInput: adapt, approve and rollback stop with clear errors
// before any training when their inputs are wrong.
func TestAdaptCommandsRejectBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pioneer", "adapt", "--adapter", dir, "--task", "clinc150", "--failures", filepath.Join(dir, "none.jsonl"), "--out", dir, "--approve", "maybe"}, "--approve must be auto or manual"},
		{[]string{"pioneer", "adapt", "--adapter", dir, "--task", "clinc150", "--failures", filepath.Join(dir, "none.jsonl"), "--out", dir, "--search", "random"}, "--search must be greedy or mcts"},
		{[]string{"pioneer", "adapt", "--adapter", dir, "--task", "no-such-task", "--failures", "x", "--out", dir}, "bundled"},
		{[]string{"pioneer", "adapt", "--adapter", dir, "--task", "clinc150", "--out", dir}, "failures"},
		{[]string{"pioneer", "approve", dir}, "holds no run"},
		{[]string{"pioneer", "rollback", dir}, "holds no run"},
		{[]string{"pioneer", "rollback", dir, "--to", "v7"}, "holds no run"},
		{[]string{"pioneer", "rollback", "--to", "v7", dir}, "holds no run"},
	} {
		err := newApp().Run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args[1:], err, c.want)
		}
	}
}

// TestTuneRejectsBadInput: negative sizes and rates are refused before any work.
func TestTuneRejectsBadInput(t *testing.T) {
	out := t.TempDir()
	for flag, val := range map[string]string{"--lr": "-0.001", "--epochs": "-2", "--batch": "-1"} {
		err := newApp().Run([]string{"pioneer", "tune", "--out", out, flag, val})
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("tune %s %s: %v", flag, val, err)
		}
	}
}

// TestFlagsAreChecked: every out-of-range value of a numeric flag stops the command with
// an error naming the flag, before any work; no value becomes a default silently.
func TestFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.jsonl")
	if err := os.WriteFile(data, []byte(`{"prompt": "a", "completion": "b"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	adapt := []string{"pioneer", "adapt", "--adapter", dir, "--task", "clinc150", "--failures", data, "--out", filepath.Join(dir, "a")}
	train := []string{"pioneer", "train", "--model", "pioneer-nano", "--data", data, "--out", filepath.Join(dir, "t")}
	tune := []string{"pioneer", "tune", "--out", filepath.Join(dir, "u")}
	pretrain := []string{"pioneer", "pretrain", "--out", filepath.Join(dir, "p")}
	generate := []string{"pioneer", "generate", "--model", "pioneer-nano", "--prompt", "x"}
	cases := map[*[]string][][2]string{
		&adapt: {{"--batch", "0"}, {"--lr", "-1"}, {"--epochs", "0"}, {"--iterations", "0"}, {"--heldout", "-5"}, {"--epsilon", "-1"},
			{"--epochs", "1000000000"}, {"--wall-time", "-1s"}, {"--token-budget", "-3"}, {"--threads", "100000"}},
		&train: {{"--grad-accum", "0"}, {"--max-len", "0"}, {"--eval-every", "0"}, {"--checkpoint-every", "0"}, {"--workers", "10000"},
			{"--epochs", "1000000000"}, {"--lora-r", "0"}, {"--lora-r", "100000000"}, {"--lr", "0"}, {"--lora-dropout", "1.5"}, {"--batch", "-1"}, {"--threads", "-1"}},
		&tune:     {{"--epochs", "0"}, {"--batch", "0"}, {"--lr", "-1"}, {"--lora-r", "-1"}, {"--train-examples", "-1"}},
		&pretrain: {{"--steps", "-1"}, {"--seq", "1"}, {"--workers", "-2"}, {"--lr", "0"}, {"--eval-every", "0"}},
		&generate: {{"--batch", "0"}, {"--max-new-tokens", "0"}, {"--temperature", "-1"}, {"--top-p", "2"}},
	}
	for base, flags := range cases {
		for _, f := range flags {
			args := append(append([]string(nil), (*base)...), f[0], f[1])
			err := newApp().Run(args)
			if err == nil || !strings.Contains(err.Error(), f[0]) {
				t.Errorf("%s %s %s: %v, want an error naming %s", (*base)[1], f[0], f[1], err, f[0])
			}
		}
	}
	// A LoRA rank above what the model's projections allow is refused at attach.
	err := newApp().Run(append(train, "--lora-r", "5000"))
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("--lora-r 5000 on pioneer-nano: %v", err)
	}
	// --resume without a checkpoint says so.
	if err := newApp().Run(append(train, "--resume")); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("--resume without a checkpoint: %v", err)
	}
}

// TestPlanCommand: description first, flags after, as people type it; a task folder that
// loads, with its three splits; and the refusals.
func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("label\ttext\n")
	for i := range 60 {
		fmt.Fprintf(&b, "ham\tsee you at %d tonight\nspam\tfree prize number %d, text WIN to claim\n", i, i)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cat", "sms"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cat", "sms", "messages.tsv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "task")
	args := []string{"pioneer", "plan", "classify text messages as spam or not", "--catalog", filepath.Join(dir, "cat"), "--out", out, "--eval-size", "20"}
	if err := newApp().Run(descriptionLast(args)); err != nil {
		t.Fatal(err)
	}
	tk, err := task.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	train, val, test, err := tk.Splits()
	if err != nil || len(test) != 20 || len(val) == 0 || len(train)+len(val)+len(test) > 120 || len(tk.Labels) != 2 {
		t.Fatalf("task %+v: train %d, validation %d, test %d, %v", tk.Labels, len(train), len(val), len(test), err)
	}
	if _, err := os.Stat(filepath.Join(out, "plan.json")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pioneer", "plan"}, "one argument"},
		{[]string{"pioneer", "plan", "classify messages as spam or not", "--eval-size", "0"}, "--eval-size"},
		{[]string{"pioneer", "plan", "classify messages as urgent or routine", "--catalog", filepath.Join(dir, "cat"), "--out", filepath.Join(dir, "x")}, "no dataset"},
		{[]string{"pioneer", "plan", "classify messages as spam or not", "--catalog", filepath.Join(dir, "absent")}, "no such file"},
		{[]string{"pioneer", "plan", "classify messages", "--examples", filepath.Join(dir, "absent.jsonl")}, "no such file"},
	} {
		if err := newApp().Run(descriptionLast(c.args)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args[2:], err, c.want)
		}
	}
}

func TestStartRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	base := []string{"pioneer", "start", "classify messages as spam or not", "--out", filepath.Join(dir, "run")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--iterations", "0"}, "--iterations"},
		{[]string{"--target", "0"}, "--target"},
		{[]string{"--target", "1.5"}, "--target"},
		{[]string{"--lr", "0"}, "--lr"},
		{[]string{"--eval-size", "-1"}, "--eval-size"},
		{[]string{"--wall-time", "-1s"}, "--wall-time"},
		{[]string{"--catalog", filepath.Join(dir, "absent")}, "no such file"},
		{[]string{"--teacher-url", "localhost:8080/v1"}, "--teacher-url must be an http"},
		{[]string{"--planner-url", "ftp://x/v1"}, "--planner-url must be an http"},
		{[]string{"--teacher-url", "http://localhost:1/v1", "--redact-pattern", "nameonly"}, "redact"},
	} {
		args := append(append([]string(nil), base...), c.args...)
		if err := newApp().Run(descriptionLast(args)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	if err := newApp().Run([]string{"pioneer", "start", "--out", filepath.Join(dir, "run")}); err == nil || !strings.Contains(err.Error(), "one argument") {
		t.Errorf("no description: %v", err)
	}
}

func TestServeRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "keys")
	if err := os.WriteFile(empty, []byte("\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-batch", "0"}, "--max-batch"},
		{[]string{"--max-queue", "0"}, "--max-queue"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--adapter", "nodir"}, "NAME=DIR"},
		{[]string{"--adapter", "a=x", "--adapter", "a=y"}, "twice"},
		{[]string{"--api-key-file", empty}, "no key"},
		{[]string{"--api-key-file", filepath.Join(dir, "absent")}, "no such file"},
		{[]string{"--addr", "256.0.0.1:99999"}, "listen"},
		{[]string{"--adapter", "a=" + filepath.Join(dir, "absent"), "--addr", "127.0.0.1:0"}, "adapter a"},
		{[]string{"--deployment", dir, "--addr", "127.0.0.1:0"}, "holds no version"},
	} {
		args := append([]string{"pioneer", "serve", "--model", "pioneer-nano", "--device", "cpu"}, c.args...)
		if err := newApp().Run(args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
}

// TestLabelCommand: served traffic and feedback become a failure log production mode
// reads and traffic examples of the task.
func TestLabelCommand(t *testing.T) {
	dir := t.TempDir()
	tk, err := task.Load("banking77")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(id, text, out string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "prompt": tk.PromptText(text), "output": out, "finish_reason": "stop"})
		return string(b) + "\n"
	}
	traffic := rec("a", "where is my card", " card_arrival") + rec("b", "my card has not come", " card_arrival") +
		rec("c", "how do I top up", " top_up_failed") + `{"id": "d", "prompt": "not the task's prompt", "output": "x"}` + "\n" + `{"id": "torn", "prompt`
	feedback := `{"id": "a", "verdict": "right"}` + "\n" + `{"id": "c", "verdict": "wrong", "expected": "top_up_by_card_charge"}` + "\n" +
		`{"id": "d", "verdict": "wrong", "expected": "refund_not_showing_up"}` + "\n" + `{"id": "zz", "verdict": "right"}` + "\n"
	for name, body := range map[string]string{"traffic.jsonl": traffic, "feedback.jsonl": feedback} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fails, right := filepath.Join(dir, "failures.jsonl"), filepath.Join(dir, "right.jsonl")
	if err := newApp().Run([]string{"pioneer", "label", "--log-dir", dir, "--task", "banking77", "--failures", fails, "--traffic", right}); err != nil {
		t.Fatal(err)
	}
	fs, quarantined, err := triage.ReadFailures(tk, fails, triage.Limits{})
	if err != nil || len(fs) != 1 || len(quarantined) != 0 || fs[0].Input != "how do I top up" || fs[0].Label != "top_up_by_card_charge" || fs[0].Predicted != "top_up_failed" {
		t.Fatalf("failures %+v, quarantined %+v, %v", fs, quarantined, err)
	}
	exs, bad, err := tk.ReadFile(right)
	if err != nil || len(bad) != 0 || len(exs) != 1 || exs[0].Text != "where is my card" || exs[0].Label != "card_arrival" {
		t.Fatalf("traffic %+v %v %v", exs, bad, err)
	}
}
