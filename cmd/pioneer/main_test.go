package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{[]string{"--steps", "0"}, "steps must be positive"},
	} {
		args := append([]string{"pioneer", "pretrain", "--out", filepath.Join(dir, "x"), "--sample", "0"}, c.args...)
		err := newApp().Run(args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v: err = %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
