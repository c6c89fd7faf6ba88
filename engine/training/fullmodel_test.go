package training

import (
	"context"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// TestFullFineTune trains every weight of a tiny Llama on prompt/completion sequences.
func TestFullFineTune(t *testing.T) {
	m, err := model.Load("../../testdata/models/llama", torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var seqs []Sequence
	for i := 0; i < 48; i++ {
		a, b := 3+i%20, 3+(i*7)%20
		// prompt "a b 1", completion "b a": learnable from the prompt
		seqs = append(seqs, Sequence{IDs: []int{a, b, 1, b, a}, Labels: []int{-100, -100, -100, b, a}})
	}
	before, _ := SequenceLoss(Full{m}, seqs, 16, 0)
	res, err := FineTune(context.Background(), Full{m}, seqs, seqs, FineTuneConfig{BatchSize: 16, Epochs: 20,
		TrainConfig: TrainConfig{Seed: 1, OutDir: t.TempDir(), Schedule: Schedule{Peak: 1e-2, Warmup: 5}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 60 || res.EvalLoss > before/2 {
		t.Fatalf("%d steps, loss %.3f -> %.3f", res.Steps, before, res.EvalLoss)
	}
	if _, err := FineTune(context.Background(), Full{m}, nil, nil, FineTuneConfig{BatchSize: 4}, nil); err == nil {
		t.Fatal("empty training set accepted")
	}
}
