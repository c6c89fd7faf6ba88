package serve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/serve"
)

// TestClosedLoop: a deployment served, traffic sent, feedback posted on its answers,
// one production round run on the server's own logs: the promoted version is swapped
// into the running server, which then answers better; a rollback swaps the old one back.
func TestClosedLoop(t *testing.T) {
	tk, d := topics(t)
	work := t.TempDir()
	// The deployment folder: a run folder whose v0 is the deployed adapter.
	dep := filepath.Join(work, "deployment")
	run, err := agent.Create(dep)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Lineage.Append("deployment", "deployment", map[string]string{"adapter": d.Deployed}); err != nil {
		t.Fatal(err)
	}
	run.Close()
	vs, err := versions.Open(dep, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs.Add(d.Deployed, versions.Meta{Source: d.Deployed}, nil); err != nil {
		t.Fatal(err)
	}
	if err := vs.SetCurrent("v0"); err != nil {
		t.Fatal(err)
	}

	p, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	logs := filepath.Join(dep, "logs")
	s, c := start(t, serve.Config{Model: p, ModelName: "nano", Deployment: dep, LogDir: logs, Poll: 20 * time.Millisecond})

	// Traffic: the task's pool through the server; a person marks each answer.
	pool, err := tk.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	correct := func() (int, int) { // test examples the served deployment gets right
		test, err := tk.Split("test")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ex := range test {
			_, b := c.do("POST", "/v1/completions", map[string]any{"model": "deployment", "prompt": tk.PromptText(ex.Text), "max_tokens": 4})
			if trafficlog.AnswerText(tk, parse(t, b).Choices[0].Text) == ex.Label {
				n++
			}
		}
		return n, len(test)
	}
	wrong := 0
	for _, ex := range pool {
		code, b := c.do("POST", "/v1/completions", map[string]any{"model": "deployment", "prompt": tk.PromptText(ex.Text), "max_tokens": 4})
		cm := parse(t, b)
		if code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		fb := map[string]any{"id": cm.ID, "verdict": "right"}
		if trafficlog.AnswerText(tk, cm.Choices[0].Text) != ex.Label {
			fb = map[string]any{"id": cm.ID, "verdict": "wrong", "expected": ex.Label}
			wrong++
		}
		if code, b := c.do("POST", "/v1/feedback", fb); code != 200 {
			t.Fatalf("feedback: %d %s", code, b)
		}
	}
	before, n := correct()
	t.Logf("v0: %d of %d pool answers wrong; %d/%d test right", wrong, len(pool), before, n)
	if wrong < 5 {
		t.Fatalf("the fixture's deployment gets only %d pool answers wrong", wrong)
	}

	// One round on the server's logs.
	cfg := production.Config{Base: data.NanoModel, Task: tk, ParentData: d.Parent, Epsilon: 2, Iterations: 1, Device: torch.CPU,
		HeldOut: 32, Probes: 8, Seed: 1, Recipe: finetune.Recipe{Epochs: 4, Batch: 8, LR: 5e-3, Seed: 1}}
	o, roundDir, err := production.Round(context.Background(), dep, logs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.Verdict != production.Promoted || roundDir != filepath.Join(dep, "rounds", "1") {
		t.Fatalf("round: %s in %s (%v)", o.Verdict, roundDir, o.Reasons)
	}
	cur, err := vs.Current()
	if err != nil || cur != "v1" {
		t.Fatalf("the deployment's current version after the round: %q %v", cur, err)
	}
	waitFor := func(v string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); s.Serving() != v && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if s.Serving() != v {
			t.Fatalf("the server serves %s, want %s", s.Serving(), v)
		}
	}
	waitFor("v1")
	after, _ := correct()
	t.Logf("v1: %d/%d test right", after, n)
	if after <= before {
		t.Fatalf("the promoted version answers %d of %d test examples right, v0 %d", after, n, before)
	}
	// A second round finds no feedback on v1 yet: nothing to adapt, nothing changed.
	if _, _, err := production.Round(context.Background(), dep, logs, cfg); err == nil || !strings.Contains(err.Error(), "marked wrong") {
		t.Fatalf("a round without feedback on v1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dep, "rounds", "2")); err == nil {
		t.Fatal("a round without feedback left a folder")
	}
	// Rollback: the server goes back to v0, and a rerun of the finished round does not
	// undo the rollback.
	if v, err := production.Rollback(dep, ""); err != nil || v != "v0" {
		t.Fatalf("rollback: %s %v", v, err)
	}
	waitFor("v0")
	if again, _ := correct(); again != before {
		t.Fatalf("after the rollback %d/%d test right, v0 had %d", again, n, before)
	}
	if _, _, err := production.Round(context.Background(), dep, logs, cfg); err == nil {
		t.Fatal("a round on v0's feedback ran twice")
	}
	if cur, _ := vs.Current(); cur != "v0" {
		t.Fatalf("a rerun undid the rollback: current %s", cur)
	}
	recs, err := os.ReadFile(filepath.Join(logs, "deployment.jsonl"))
	if err != nil || strings.Count(string(recs), "\n") != 2 {
		t.Fatalf("deployment.jsonl: %s %v", recs, err)
	}
}
