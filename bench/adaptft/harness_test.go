package main

import (
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
)

func labelTask(t *testing.T) *task.Task {
	t.Helper()
	tk, err := task.New("syn", task.Classification, []string{"a", "b"}, nil, "accuracy")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestExamplesLeavesOutUnreadable: a seen line whose expected answer is not one of the
// task's is counted and left out; the others become examples with the logged input.
func TestExamplesLeavesOutUnreadable(t *testing.T) {
	exs, bad := examples(labelTask(t), []logRecord{{ID: "1", Input: "hello", Expected: "a"}, {ID: "2", Input: "x", Expected: "zzz"}, {ID: "3", Input: "y", Expected: " b "}})
	if bad != 1 || len(exs) != 2 || exs[0].Text != "hello" || exs[0].Label != "a" || exs[1].ID != "3" || exs[1].Label != "b" {
		t.Fatalf("examples %+v, %d unreadable", exs, bad)
	}
}

// stages are four stages' scores of a made-up scenario: naive falls to 0.70 at stage 2,
// the agent ends at 0.92 against a first deployment of 0.90.
var stages = []stageScores{
	{Deployed: 0.90, Naive: 0.91, Agent: 0.93, AgentBroken: 0, Planted: 0, Verdict: "promoted", Version: "v1"},
	{Deployed: 0.93, Naive: 0.85, Agent: 0.93, AgentBroken: 2, Planted: 50, Admitted: 1, Verdict: "promoted", Version: "v2"},
	{Deployed: 0.93, Naive: 0.70, Agent: 0.93, Planted: 80, Verdict: "rejected", Version: "v0"},
	{Deployed: 0.93, Naive: 0.75, Agent: 0.92, AgentBroken: 1, Planted: 130, Admitted: 2, Verdict: "promoted", Version: "v1"},
}

func figures(r *bench.Result) map[string]bench.Figure {
	out := map[string]bench.Figure{}
	for _, f := range r.Figures {
		out[f.Name] = f
	}
	return out
}

// TestResultFigures: the scenario's figures say what the stages measured.
func TestResultFigures(t *testing.T) {
	h := &harness{Model: data.NanoModel, Log: io.Discard}
	prog, err := bench.OpenProgress(t.TempDir(), "x", false)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scenario{name: "syn", kind: kindLabel}
	r, err := h.result(sc, 1, labelTask(t), finetune.Recipe{Epochs: 4, Batch: 16, LR: 5e-3}, prog, stages, 100, 600, 4)
	if err != nil {
		t.Fatal(err)
	}
	f := figures(r)
	for name, want := range map[string]float64{
		"syn_stage0_deployed_metric": 0.90, "syn_stage2_naive_metric": 0.70, "syn_stage3_agent_metric": 0.92,
		"syn_poison_admitted": 3, "syn_poison_deployed": 4, "syn_regressions": 2, "syn_naive_worst_drop": 0.20, "syn_improve_or_preserve": 1,
	} {
		if g, ok := f[name]; !ok || g.Pioneer < want-1e-9 || g.Pioneer > want+1e-9 {
			t.Errorf("%s = %+v, want %g", name, g, want)
		}
	}
	if p := f["syn_poison_admitted"]; p.Reference == nil || *p.Reference != 260 {
		t.Errorf("poison admitted's reference %+v, want the 260 planted", p)
	}
	// An agent that ends below the first deployment did not improve or preserve it.
	worse := append([]stageScores(nil), stages...)
	worse[3].Agent = 0.89
	r, err = h.result(sc, 1, labelTask(t), finetune.Recipe{}, prog, worse, 100, 600, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g := figures(r)["syn_improve_or_preserve"]; g.Pioneer != 0 {
		t.Errorf("improve_or_preserve %g for an agent ending at 0.89 below 0.90", g.Pioneer)
	}
}

// TestCombine: the scenarios' results in a work folder make one result with every
// figure, the count of scenarios improved or preserved, and a plot.
func TestCombine(t *testing.T) {
	h := &harness{Model: data.NanoModel, Log: io.Discard}
	out := t.TempDir()
	prog, err := bench.OpenProgress(t.TempDir(), "x", false)
	if err != nil {
		t.Fatal(err)
	}
	worse := append([]stageScores(nil), stages...)
	worse[3].Agent = 0.5
	for name, ss := range map[string][]stageScores{"clinc150": stages, "sms_spam": worse} {
		r, err := h.result(&scenario{name: name, kind: kindLabel}, 1, labelTask(t), finetune.Recipe{}, prog, ss, 100, 600, 0)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(out, name, "seed1", h.workName())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := r.Write(filepath.Join(dir, "result.json")); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "adaptft.json")
	if err := combine(out, 1, h, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	f := figures(&r)
	if g := f["improve_or_preserve_scenarios"]; g.Pioneer != 1 {
		t.Errorf("improve_or_preserve_scenarios %g, want 1 (clinc150 yes, sms_spam no)", g.Pioneer)
	}
	if _, ok := f["sms_spam_stage3_agent_metric"]; !ok || len(r.Figures) != 2*(4*3+6)+1 {
		t.Errorf("%d figures, want both scenarios' 18 and the count", len(r.Figures))
	}
	pf, err := os.Open(filepath.Join(filepath.Dir(path), "adaptft.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() <= b.Dy() {
		t.Errorf("plot %v: want two panels side by side", b)
	}
	if err := combine(t.TempDir(), 1, h, path); err == nil {
		t.Error("combined a folder with no results")
	}
	// sms_spam's run folder gone (run on another machine): its figures, method and
	// command are kept from the combined file that the new one replaces.
	if err := os.RemoveAll(filepath.Join(out, "sms_spam")); err != nil {
		t.Fatal(err)
	}
	if err := combine(out, 1, h, path); err != nil {
		t.Fatal(err)
	}
	again, err := bench.ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	g := figures(again)
	if len(again.Figures) != len(r.Figures) || g["sms_spam_stage3_agent_metric"].Pioneer != 0.5 || g["improve_or_preserve_scenarios"].Pioneer != 1 {
		t.Errorf("after sms_spam's folder went: %d figures (want %d), sms_spam stage 3 agent %g (want 0.5), count %g",
			len(again.Figures), len(r.Figures), g["sms_spam_stage3_agent_metric"].Pioneer, g["improve_or_preserve_scenarios"].Pioneer)
	}
	if !strings.Contains(again.Method, " sms_spam (commit ") || !strings.Contains(again.Method, "not rerun") ||
		!strings.Contains(again.Command, "-scenario sms_spam") || strings.Index(again.Method, " clinc150 (commit ") > strings.Index(again.Method, " sms_spam (commit ") {
		t.Errorf("after sms_spam's folder went: command %q, method %q: want sms_spam's part kept, after clinc150's", again.Command, again.Method)
	}
}
