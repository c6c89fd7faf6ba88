package coldstart

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/finetune"
)

// TestSizeToBudget: a plan that would not end in the wall time left, less the longest
// scoring so far, at the training pace of the slowest candidate so far of its strategy,
// has its data cut to what fits; one that fits, a run without a wall-time bound and a
// first candidate (no pace yet) are kept; a budget that trains fewer than
// minSizedExamples refuses the plan.
func TestSizeToBudget(t *testing.T) {
	r := finetune.Recipe{Epochs: 2}
	done := []Candidate{
		{Curation: Curation{Out: 100}, Recipe: finetune.Recipe{Epochs: 2}, TrainS: 20, WallS: 30},  // 0.1 s per example and epoch, 10 s of scoring
		{Curation: Curation{Out: 1000}, Recipe: finetune.Recipe{Epochs: 1}, TrainS: 50, WallS: 55}, // 0.05
	}
	b := agent.NewBudget(110*time.Second, 0) // about 110 s left, 100 s after scoring: 500 examples of 2 epochs at 0.1 s
	pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, done, b, 10_000)
	if !ok || pl.N < 490 || pl.N > 500 || !strings.Contains(pl.Sized, "of 10000 examples") {
		t.Fatalf("all 10,000 examples in 100 s: %+v %v", pl, ok)
	}
	// A candidate in every weight paces plans in every weight only; before there is one,
	// they go at the LoRA candidates' pace.
	fullDone := append(slices.Clone(done), Candidate{Curation: Curation{Out: 100}, Recipe: finetune.Recipe{Epochs: 1, Full: true}, TrainS: 40, WallS: 45}) // 0.4
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, fullDone, b, 10_000); !ok || pl.N < 490 || pl.N > 500 {
		t.Fatalf("a LoRA plan paced by a candidate in every weight: %+v %v", pl, ok)
	}
	rf := finetune.Recipe{Epochs: 2, Full: true}
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: rf, N: 0}, fullDone, b, 10_000); !ok || pl.N < 120 || pl.N > 125 {
		t.Fatalf("a plan in every weight at 0.4 s per example and epoch: %+v %v", pl, ok)
	}
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: rf, N: 0}, done, b, 10_000); !ok || pl.N < 490 || pl.N > 500 {
		t.Fatalf("a plan in every weight before any such candidate: %+v %v", pl, ok)
	}
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 300}, done, b, 10_000); !ok || pl.N != 300 || pl.Sized != "" {
		t.Fatalf("300 examples fit: %+v %v", pl, ok)
	}
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, nil, b, 10_000); !ok || pl.N != 0 {
		t.Fatalf("no pace yet: %+v %v", pl, ok)
	}
	if pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, done, agent.NewBudget(0, 0), 10_000); !ok || pl.N != 0 {
		t.Fatalf("no wall-time bound: %+v %v", pl, ok)
	}
	if _, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, done, agent.NewBudget(5*time.Second, 0), 10_000); ok {
		t.Fatal("5 s left, less than the 10 s of scoring, trains a candidate")
	}
}

// TestMovesSearchTheStrategy: with the strategy searched, a LoRA pipeline can move to
// every weight at fullLRShare of its rate and back, a pipeline in every weight has no
// rank move, and its rate stays within four times the root's rate taken at
// fullLRShare; with the strategy fixed, neither move exists.
func TestMovesSearchTheStrategy(t *testing.T) {
	root := point{N: 64, Epochs: 2, LR: 1e-3, Rank: 16, pool: 1000, either: true}
	moves := func(p point) map[string]point {
		out := map[string]point{}
		for _, m := range p.Moves(root) {
			out[m.Name] = m.To
		}
		return out
	}
	full, ok := moves(root)["every weight"]
	if !ok || !full.Full || math.Abs(full.LR-1e-4) > 1e-12 || full.Key() == root.Key() {
		t.Fatalf("every weight from the LoRA root: %+v %v", full, ok)
	}
	fm := moves(full)
	if _, ok := fm["LoRA rank x2"]; ok {
		t.Fatal("a rank move for a pipeline in every weight")
	}
	if back, ok := fm["LoRA"]; !ok || back.Full || math.Abs(back.LR-1e-3) > 1e-12 || back.Key() != root.Key() {
		t.Fatalf("back to LoRA: %+v %v", back, ok)
	}
	low := full
	low.LR = 1e-4 / 4
	if _, ok := moves(low)["learning rate x0.5"]; ok {
		t.Fatal("a rate below a quarter of every weight's share of the root's")
	}
	if _, ok := moves(low)["learning rate x2"]; !ok {
		t.Fatal("no rate x2 from a quarter of every weight's share of the root's")
	}
	fixed := root
	fixed.either = false
	for _, m := range fixed.Moves(root) {
		if m.Name == "every weight" || m.Name == "LoRA" {
			t.Fatalf("move %q with the strategy fixed", m.Name)
		}
	}
}
