package lora_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// copyTask: the completion repeats the prompt; the loss is on the completion only.
func copyTask(n int, seed uint64) []training.Sequence {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []training.Sequence
	for i := 0; i < n; i++ {
		k := 3 + r.IntN(4)
		var s training.Sequence
		for j := 0; j < k; j++ {
			s.IDs = append(s.IDs, 3+r.IntN(20))
			s.Labels = append(s.Labels, -100)
		}
		s.IDs = append(s.IDs, 2) // separator
		s.Labels = append(s.Labels, -100)
		for j := 0; j < k; j++ {
			s.IDs = append(s.IDs, s.IDs[j])
			s.Labels = append(s.Labels, s.IDs[j])
		}
		out = append(out, s)
	}
	return out
}

func newTrainer(t *testing.T) (lora.Trainer, model.CausalLM) { return newTrainerDropout(t, 0) }

func newTrainerDropout(t *testing.T, dropout float64) (lora.Trainer, model.CausalLM) {
	t.Helper()
	m, err := model.Load("../testdata/models/llama", torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	set, err := lora.Attach(m, lora.Config{R: 8, Alpha: 16, Dropout: dropout, TargetModules: lora.Targets{Names: []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return lora.Trainer{Model: m, Set: set}, m
}

func ftConfig(dir string) training.FineTuneConfig {
	return training.FineTuneConfig{BatchSize: 8, PadID: 0, TrainConfig: training.TrainConfig{
		Steps: 40, Seed: 7, OutDir: dir, GradClip: 1, Schedule: training.Schedule{Peak: 2e-2, Warmup: 4, MinRatio: 0.1},
		EvalEvery: 10, CheckpointEvery: 5,
	}}
}

// TestLoRAFineTuneLearnsOnlyAdapters trains LoRA adapters on a copy task: held-out loss
// falls, the base weights do not move, and the run folder holds a PEFT adapter.
func TestLoRAFineTuneLearnsOnlyAdapters(t *testing.T) {
	tr, m := newTrainer(t)
	before, _ := m.Named("model.layers.0.self_attn.q_proj.weight").Float32s()
	train, eval := copyTask(128, 1), copyTask(32, 2)
	first, err := training.SequenceLoss(tr, eval, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := training.FineTune(context.Background(), tr, train, eval, ftConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out loss %.3f -> %.3f", first, res.EvalLoss)
	if res.EvalLoss > first-0.5 {
		t.Fatalf("held-out loss %.3f -> %.3f: LoRA did not learn the copy task", first, res.EvalLoss)
	}
	after, _ := m.Named("model.layers.0.self_attn.q_proj.weight").Float32s()
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("LoRA training changed a base weight")
		}
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "best/adapter_model.safetensors", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("run folder lacks %s", f)
		}
	}
}

// TestLoRAFineTuneResumeIsExact interrupts LoRA training and resumes it: the adapter is
// bit-identical to an uninterrupted run's.
func TestLoRAFineTuneResumeIsExact(t *testing.T) {
	for _, dropout := range []float64{0, 0.1} {
		resumeExact(t, dropout)
	}
}

// resumeExact: with dropout the generator's state must come back from the checkpoint too.
func resumeExact(t *testing.T, dropout float64) {
	train, eval := copyTask(64, 1), copyTask(16, 2)
	full := t.TempDir()
	tr, _ := newTrainerDropout(t, dropout)
	if _, err := training.FineTune(context.Background(), tr, train, eval, ftConfig(full), nil); err != nil {
		t.Fatal(err)
	}
	split := t.TempDir()
	tr2, _ := newTrainerDropout(t, dropout)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := training.FineTune(ctx, tr2, train, eval, ftConfig(split), func(p training.Progress) {
		if p.Step == 13 {
			cancel()
		}
	})
	if err != context.Canceled {
		t.Fatalf("interrupted run: %v", err)
	}
	tr3, _ := newTrainerDropout(t, dropout)
	cfg := ftConfig(split)
	cfg.Resume = true
	res, err := training.FineTune(context.Background(), tr3, train, eval, cfg, nil)
	if err != nil || res.ResumedFrom != 13 {
		t.Fatalf("resume: %v (from %d)", err, res.ResumedFrom)
	}
	a, _ := os.ReadFile(filepath.Join(full, "adapter_model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(split, "adapter_model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("dropout %v: resumed LoRA run differs from the uninterrupted one", dropout)
	}
}

// TestShardedBackwardMatches: a batch split across worker threads (training.Backward) gives
// the trainable weights, LoRA adapters or every weight (full fine-tuning), the gradients
// it gives them on one thread, within float32 rounding; the LoRA trainer allows the split
// without dropout only.
func TestShardedBackwardMatches(t *testing.T) {
	tr, m := newTrainer(t)
	if !tr.Concurrent() {
		t.Fatal("a trainer without dropout should allow concurrent shards")
	}
	if dr, _ := newTrainerDropout(t, 0.1); dr.Concurrent() {
		t.Fatal("a trainer with dropout allows concurrent shards")
	}
	// B starts at zero (as PEFT's), which would leave A's gradients zero: give it values.
	g, err := torch.NewGenerator(5, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	init := torch.NewScope()
	defer init.Close()
	for i, p := range tr.Parameters() {
		if strings.Contains(tr.Names()[i], "lora_B") {
			if err := p.CopyFrom(init.MulScalar(init.Randn(p.Shape(), torch.Float32, torch.CPU, g), 0.05)); err != nil {
				t.Fatal(err)
			}
		}
	}
	shardedMatches(t, tr)
	for _, p := range tr.Parameters() {
		if err := p.SetRequiresGrad(false); err != nil {
			t.Fatal(err)
		}
	}
	shardedMatches(t, training.Full{Model: m})
}

func shardedMatches(t *testing.T, lm training.LM) {
	t.Helper()
	seqs := copyTask(6, 3)
	batch := make([]int, len(seqs))
	for i := range batch {
		batch[i] = i
	}
	ids, labels, T := training.Pad(seqs, batch, 0)
	targets := make([]int64, len(labels)) // next-token targets: labels shifted left by one
	for b := range len(seqs) {
		for p := range T {
			targets[b*T+p] = -100
			if p+1 < T {
				targets[b*T+p] = labels[b*T+p+1]
			}
		}
	}
	params := lm.Parameters()
	for _, p := range params {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	defer torch.ZeroGrad(params)
	grads := func(w *training.Workers) (float64, [][]float32) {
		if err := torch.ZeroGrad(params); err != nil {
			t.Fatal(err)
		}
		lv, _, err := training.Backward(lm, w, ids, targets, len(seqs), T, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		s := torch.NewScope()
		defer s.Close()
		var out [][]float32
		for _, p := range params {
			v, err := s.Grad(p).Float32s()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return lv, out
	}
	wantLoss, want := grads(nil)
	w := training.NewWorkers(3)
	defer w.Close()
	lv, got := grads(w)
	if d := lv - wantLoss; d > 1e-5 || d < -1e-5 {
		t.Fatalf("%T: loss on 3 workers %v, on one thread %v", lm, lv, wantLoss)
	}
	var scale float32
	for _, g := range want {
		for _, v := range g {
			scale = max(scale, v, -v)
		}
	}
	for i := range want {
		for j := range want[i] {
			if d := got[i][j] - want[i][j]; d > 1e-5*scale || d < -1e-5*scale {
				t.Fatalf("%T: %s [%d]: %v on 3 workers, %v on one thread (largest gradient %v)", lm, lm.Names()[i], j, got[i][j], want[i][j], scale)
			}
		}
	}
}
