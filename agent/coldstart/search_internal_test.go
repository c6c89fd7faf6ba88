package coldstart

import (
	"strings"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/finetune"
)

// TestSizeToBudget: a plan that would not end in the wall time left, at the pace of the
// slowest candidate so far, has its data cut to what fits; one that fits, a run without
// a wall-time bound and a first candidate (no pace yet) are kept; a budget that trains
// fewer than minSizedExamples refuses the plan.
func TestSizeToBudget(t *testing.T) {
	r := finetune.Recipe{Epochs: 2}
	done := []Candidate{
		{Curation: Curation{Out: 100}, Recipe: finetune.Recipe{Epochs: 2}, WallS: 20},  // 0.1 s per example and epoch
		{Curation: Curation{Out: 1000}, Recipe: finetune.Recipe{Epochs: 1}, WallS: 50}, // 0.05
	}
	b := agent.NewBudget(100*time.Second, 0) // about 100 s left: 500 examples of 2 epochs at 0.1 s
	pl, ok := sizeToBudget(pipelinePlan{Recipe: r, N: 0}, done, b, 10_000)
	if !ok || pl.N < 490 || pl.N > 500 || !strings.Contains(pl.Sized, "of 10000 examples") {
		t.Fatalf("all 10,000 examples in 100 s: %+v %v", pl, ok)
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
		t.Fatal("5 s left (25 examples at this pace) trains a candidate")
	}
}
