package production

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
)

// TestRepairSource: the repair continues the best candidate by held-out metric among
// those rejected for breaking R alone; one that passed, broke no more than epsilon, did
// not improve, or failed the ratchet is not a source.
func TestRepairSource(t *testing.T) {
	deployed := Scores{HeldOut: 0.2, Previous: 0.5}
	cands := []*candidate{
		{Name: "passed", Pass: true, Scores: Scores{HeldOut: 0.9, Previous: 0.6}},
		{Name: "within-eps", Scores: Scores{HeldOut: 0.8, Previous: 0.6, Regressions: 2}},
		{Name: "no-gain", Scores: Scores{HeldOut: 0.2, Previous: 0.6, Regressions: 5}},
		{Name: "ratchet", Scores: Scores{HeldOut: 0.7, Previous: 0.4, Regressions: 5}},
		{Name: "good", Scores: Scores{HeldOut: 0.5, Previous: 0.5, Regressions: 9}},
		{Name: "tie-fewer", Scores: Scores{HeldOut: 0.5, Previous: 0.5, Regressions: 4}},
		{Name: "worse", Scores: Scores{HeldOut: 0.4, Previous: 0.6, Regressions: 3}},
	}
	if got := repairSource(cands, deployed, 2); got == nil || got.Name != "tie-fewer" {
		t.Fatalf("source %+v, want tie-fewer", got)
	}
	if got := repairSource(cands[:4], deployed, 2); got != nil {
		t.Fatalf("source %+v, want none", got)
	}
}

// TestRepairSet: R (poison left out), each broken example of R repairCopies times
// more, and an anchor of anchorPerR training examples per example of R; an id not in R or
// poisoned is not added.
func TestRepairSet(t *testing.T) {
	tk, err := task.New("topics", task.Classification, []string{"a", "b"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var trained []task.Example
	for i := range 40 {
		trained = append(trained, task.Example{ID: fmt.Sprintf("p%d", i), Text: "x", Label: []string{"a", "b"}[i%2]})
	}
	r := []task.Example{{ID: "r1", Text: "one", Label: "a"}, {ID: "r2", Text: "two", Label: "b"}, {ID: "r3", Text: "three", Label: "a"}}
	tg := &triaged{trafficPoison: map[string]bool{"r3": true}}
	got := tg.repairSet(tk, trained, r, []string{"r2", "r3", "gone"}, 1)
	count := map[string]int{}
	for _, ex := range got {
		count[ex.ID]++
	}
	if count["r1"] != 1 || count["r2"] != 1+repairCopies || count["r3"] != 0 || count["gone"] != 0 || len(got) != 2+repairCopies+anchorPerR*len(r) {
		t.Fatalf("repair set %v (%d examples): want r1 once, r2 %d times, no r3, and %d anchors", count, len(got), 1+repairCopies, anchorPerR*len(r))
	}
	if again := tg.repairSet(tk, trained, r, []string{"r2"}, 1); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatal("the same seed drew another repair set")
	}
}

// TestRepairTrainsFromTheSource runs the repair on a real search space (pioneer-nano,
// deployfixture's deployment and traffic): a candidate said to have broken three of R
// is trained one more epoch from its own weights on its training set with those three
// four times more, recorded as coming from it, and gated; a source whose files changed
// since they were scored is refused.
func TestRepairTrainsFromTheSource(t *testing.T) {
	tk, d := deployment(t)
	in, run := openRun(t, tk, d, finetune.Recipe{Epochs: 2, Batch: 8, LR: 5e-3, Seed: 1})
	cfg := in.cfg
	ctx := context.Background()
	tg, err := in.triageLog(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	base, err := in.measureBaseline(ctx, run.Dir, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.R) < 3 {
		t.Fatalf("R holds %d examples: the test needs 3", len(base.R))
	}
	sp := newSpace(in, run, tg, base, groupFailures(in.t, tg.admitted))
	src, err := sp.candidate(ctx, "iter1", cfg.Recipe, 1, sp.curriculum(ctx, 2, 0, true, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Said to be better everywhere but on three of R.
	broken := []string{base.R[0].ID, base.R[1].ID, base.R[2].ID}
	src.Pass, src.Scores = false, Scores{HeldOut: base.Deployed.HeldOut + 0.1, Previous: base.Deployed.Previous, Regressions: 3, Broken: broken}
	sp.noteScored(src)
	rep, err := sp.repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || rep.Recipe.Epochs != repairEpochs || rep.Recipe.LR != cfg.Recipe.LR*repairRate || rep.Verdict == "" {
		t.Fatalf("repair %+v: want %d epochs at %g of the rate, gated", rep, repairEpochs, repairRate)
	}
	trained, _, err := in.t.ReadFile(filepath.Join(src.trained(run.Dir), versions.TrainingSetFile))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := in.t.ReadFile(filepath.Join(rep.trained(run.Dir), versions.TrainingSetFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(trained) {
		t.Fatalf("the repair keeps %d training examples, want its source's %d", len(got), len(trained))
	}
	// The first repair continues the source; a later one (while R alone still fails)
	// continues the repair before it.
	var rec map[string]any
	first := "repair/" + strings.ReplaceAll(src.Name, "/", "-") + "-1"
	if ok, err := run.Lineage.Get(first+"/recipe", &rec); err != nil || !ok || rec["from"] != src.Name || rec["train_examples"] != float64(len(sp.tg.repairSet(in.t, trained, base.R, broken, 2))) {
		t.Fatalf("the first repair's recipe record %v (%v, %v): want from %s, on its repair set", rec, ok, err, src.Name)
	}
	if rep.Name != first {
		if ok, err := run.Lineage.Get(rep.Name+"/recipe", &rec); err != nil || !ok || !strings.HasPrefix(rec["from"].(string), "repair/") {
			t.Fatalf("a later repair's record %v: want it from the repair before", rec)
		}
	}
	// The source's files changed after scoring: not trained from.
	src.Scores.HeldOut += 0.1 // now the best source, under another name
	src.Name = "iter1/changed"
	src.Files = map[string]string{"adapter_model.safetensors": "0000"}
	if _, err := sp.repair(ctx); err == nil || !strings.Contains(err.Error(), "changed since it was scored") {
		t.Fatalf("a source whose files changed: %v", err)
	}
}
