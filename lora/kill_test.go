package lora_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/engine/training"
)

// TestHelperTrainProcess is not a test: TestKilledTrainingResumesExactly runs the test
// binary again with PIONEER_TRAIN_HELPER=RUN_DIR to get a real training process to kill.
func TestHelperTrainProcess(t *testing.T) {
	dir := os.Getenv("PIONEER_TRAIN_HELPER")
	if dir == "" {
		t.Skip("helper process only")
	}
	tr, _ := newTrainer(t)
	cfg := ftConfig(dir)
	cfg.Steps, cfg.CheckpointEvery, cfg.Resume = 400, 1, true
	if _, err := training.FineTune(context.Background(), tr, copyTask(64, 1), copyTask(16, 2), cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// TestKilledTrainingResumesExactly SIGKILLs a real training process mid-run (it
// checkpoints every step, so the kill can land inside a checkpoint write), resumes it to
// the end in a second process, and compares the adapter with an uninterrupted run's: the
// bits must be identical.
func TestKilledTrainingResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts training processes")
	}
	train, eval := copyTask(64, 1), copyTask(16, 2)
	full := t.TempDir()
	tr, _ := newTrainer(t)
	cfg := ftConfig(full)
	cfg.Steps, cfg.CheckpointEvery = 400, 1
	if _, err := training.FineTune(context.Background(), tr, train, eval, cfg, nil); err != nil {
		t.Fatal(err)
	}

	killed := t.TempDir()
	run := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrainProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PIONEER_TRAIN_HELPER="+killed)
		return cmd
	}
	cmd := run()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once some checkpoints exist but well before the end.
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(killed, "checkpoints", "latest"))
		if strings.TrimSpace(string(b)) >= "step-0000050" {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint after 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	latest, _ := os.ReadFile(filepath.Join(killed, "checkpoints", "latest"))
	t.Logf("killed at %s", strings.TrimSpace(string(latest)))
	if out, err := run().CombinedOutput(); err != nil {
		t.Fatalf("resumed process: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(filepath.Join(full, "adapter_model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(killed, "adapter_model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("the killed and resumed run ended with different adapter weights")
	}
}
