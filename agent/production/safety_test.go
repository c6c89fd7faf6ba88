package production_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/training"
)

func current(t *testing.T, out string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "versions", "CURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func truncateFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestApproveAndRollbackRefuseWhatTheyShould: approval checks that the waiting
// candidate's files are the ones scored and finds them relative to the run folder (a
// copied folder approves its own); rollback takes version names only and verifies the
// version's weights; none of them changes CURRENT when it refuses.
func TestApproveAndRollbackRefuseWhatTheyShould(t *testing.T) {
	j := sharedJob(t)
	tk, err := task.Load(j.TaskDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := childConfig(j, tk)
	cfg.Manual, cfg.Out = true, filepath.Join(t.TempDir(), "manual")
	o, err := production.Run(context.Background(), cfg)
	if err != nil || o.Verdict != production.AwaitingApproval {
		t.Fatalf("manual run: %+v %v", o, err)
	}
	// Truncated candidate weights are not approved.
	cut := filepath.Join(t.TempDir(), "cut")
	copyTree(t, cfg.Out, cut)
	truncateFile(t, filepath.Join(cut, filepath.FromSlash(o.Candidate), "adapter", "adapter_model.safetensors"))
	if _, err := production.Approve(cut); err == nil || !strings.Contains(err.Error(), "adapter_model.safetensors") {
		t.Fatalf("approve with truncated weights: %v", err)
	}
	if cur := current(t, cut); cur != "v0" {
		t.Fatalf("a refused approval deployed %s", cur)
	}
	// A corrupt pending.json is named.
	bad := filepath.Join(t.TempDir(), "bad")
	copyTree(t, cfg.Out, bad)
	if err := os.WriteFile(filepath.Join(bad, "pending.json"), []byte(`{"candidate": `), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := production.Approve(bad); err == nil || !strings.Contains(err.Error(), "pending.json") {
		t.Fatalf("approve with a corrupt pending.json: %v", err)
	}
	// A copy of the run folder approves its own candidate, the original gone.
	copied := filepath.Join(t.TempDir(), "copied")
	copyTree(t, cfg.Out, copied)
	if err := os.RemoveAll(cfg.Out); err != nil {
		t.Fatal(err)
	}
	if v, err := production.Approve(copied); err != nil || v != "v1" || current(t, copied) != "v1" {
		t.Fatalf("approve a copied run folder: %q %v", v, err)
	}
	// Rollback: names only; weights verified; an unknown version named.
	for to, want := range map[string]string{"../../../dep/adapter": "not a version name", "/tmp/x": "not a version name", "v7": "no version v7"} {
		if _, err := production.Rollback(copied, to); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rollback --to %s: %v, want %q", to, err, want)
		}
	}
	if err := os.Remove(filepath.Join(copied, "versions", "v0", "adapter_model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if _, err := production.Rollback(copied, "v0"); err == nil || current(t, copied) != "v1" {
		t.Fatalf("rollback to a version without weights: %v, CURRENT %s", err, current(t, copied))
	}
	if err := os.Remove(filepath.Join(copied, "versions", "CURRENT")); err != nil {
		t.Fatal(err)
	}
	if _, err := production.Rollback(copied, ""); err == nil || !strings.Contains(err.Error(), "no CURRENT") {
		t.Fatalf("rollback with CURRENT missing: %v", err)
	}
	if _, err := production.Rollback(filepath.Join(t.TempDir(), "does", "not", "exist"), ""); err == nil {
		t.Fatal("rollback of a folder that does not exist")
	}
}

// TestRunChecksItsInputsFirst: a damaged deployment, a log no line of which is usable,
// and a rerun with another failure log are refused; the first two before the run folder
// holds anything of them.
func TestRunChecksItsInputsFirst(t *testing.T) {
	j := sharedJob(t)
	tk, err := task.Load(j.TaskDir)
	if err != nil {
		t.Fatal(err)
	}
	// A truncated adapter: refused, nothing copied; the good one then runs there.
	broken := filepath.Join(t.TempDir(), "broken")
	copyTree(t, j.Deployed, broken)
	truncateFile(t, filepath.Join(broken, "adapter_model.safetensors"))
	cfg := childConfig(j, tk)
	cfg.Out = filepath.Join(t.TempDir(), "run")
	cfg.Deployed = broken
	if _, err := production.Run(context.Background(), cfg); err == nil {
		t.Fatal("a truncated adapter was accepted")
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused run left %s", cfg.Out)
	}
	// A log whose every line is unusable.
	junk := filepath.Join(t.TempDir(), "junk.jsonl")
	if err := os.WriteFile(junk, []byte("not json\n{\"id\": \"a\"}\n\xff\xfe binary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := childConfig(j, tk)
	c.Out, c.Failures = filepath.Join(t.TempDir(), "junk"), junk
	_, err = production.Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "none of its 3 lines is usable") || !strings.Contains(err.Error(), `line 2: no "input"`) {
		t.Fatalf("an unusable log: %v", err)
	}
	if _, err := os.Stat(c.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused run left %s", c.Out)
	}
	// A folder run with one log, then again with another: refused, naming it.
	c.Failures = j.Failures
	c.Out = filepath.Join(t.TempDir(), "rerun")
	ctx, cancel := context.WithCancel(context.Background())
	c.Progress = func(training.Progress) { cancel() } // stop at the first training step
	if _, err := production.Run(ctx, c); !production.IsStopped(err) {
		t.Fatalf("the first run did not stop: %v", err)
	}
	c.Progress = nil
	other := filepath.Join(t.TempDir(), "other.jsonl")
	b, err := os.ReadFile(j.Failures)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, append(b, []byte(`{"id": "extra", "input": "a new line", "output": "food", "expected": "music"}`+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Failures = other
	if _, err := production.Run(context.Background(), c); !errors.Is(err, agent.ErrOtherRun) || !strings.Contains(err.Error(), `failures="`) {
		t.Fatalf("rerun with another failure log: %v", err)
	}
}
