package finetune_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/deployfixture"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

const nano = "../../data/models/pioneer-nano"

// TestSequencesFitLongInputs: an input longer than the context is cut (its end dropped)
// so that the whole target is trained on; short examples are untouched.
func TestSequencesFitLongInputs(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join(nano, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	tk, err := task.New("sum", task.Generation, nil, nil, "rouge_l")
	if err != nil {
		t.Fatal(err)
	}
	target := " Ann will bring the cake to the party on Sunday."
	want, err := tok.Encode(target, false)
	if err != nil {
		t.Fatal(err)
	}
	// Line breaks in the input too: an input whose words would fit once joined by
	// spaces, but not as written, is cut as well.
	long := strings.Repeat("Ann: what shall I bring?\r\nBob: a cake would be lovely.\r\n", 40)
	exs := []task.Example{{ID: "long", Text: long, Output: strings.TrimSpace(target)}, {ID: "short", Text: "Ann: hi", Output: "A greeting."}}
	const maxLen = 64
	seqs, err := finetune.Sequences(tk, tok, exs, 0, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	s := seqs[0]
	if len(s.IDs) > maxLen {
		t.Fatalf("%d tokens, more than the context of %d", len(s.IDs), maxLen)
	}
	trained := func(s training.Sequence) int {
		n := 0
		for _, l := range s.Labels {
			if l != -100 {
				n++
			}
		}
		return n
	}
	if n := trained(s); n != len(want)+1 { // the target and the end token
		t.Fatalf("%d target tokens trained on, want the whole target's %d and the end token", n, len(want))
	}
	// Words that would fit once joined by spaces, but not as written (line breaks
	// between them): the written input is what is measured, and it is cut.
	words := strings.Fields(strings.Repeat("cake party ", 10))
	spaced, err := tok.Encode(strings.Join(words, " "), true)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Join(words, "\r\n\r\n\r\n")
	raw, err := tok.Encode(broken, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(spaced)+len(want)+1 > maxLen || len(raw)+len(want)+1 <= maxLen {
		t.Fatalf("the input has %d tokens joined by spaces and %d as written: the test shows nothing", len(spaced), len(raw))
	}
	bs, err := finetune.Sequences(tk, tok, []task.Example{{ID: "breaks", Text: broken, Output: strings.TrimSpace(target)}}, 0, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	if n := trained(bs[0]); len(bs[0].IDs) > maxLen || n != len(want)+1 {
		t.Fatalf("an input with line breaks: %d tokens, %d of them trained on; want at most %d, the whole target's %d and the end token", len(bs[0].IDs), n, maxLen, len(want))
	}
	full, err := finetune.Sequences(tk, tok, exs[1:], 0, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs[1].IDs) != len(full[0].IDs) {
		t.Fatal("a short example was changed")
	}
}

// TestTrainFrom: training From a saved adapter starts from its weights (a step at a
// vanishing learning rate leaves them where they were), where a fresh start has B = 0;
// a From folder that does not fit the recipe is an error naming it.
func TestTrainFrom(t *testing.T) {
	tk, err := deployfixture.Task(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(nano, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(filepath.Join(nano, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	all, err := tk.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	exs := all[:8]
	train := func(out, from string, lr float64, rank int) map[string][]float32 {
		t.Helper()
		set, _, err := finetune.Train(context.Background(), m, tok, tk, exs, exs[:2], finetune.Recipe{Epochs: 1, Batch: 8, LR: lr, Rank: rank, Seed: 3},
			finetune.TrainEnv{EOS: 0, Pad: 0, Base: nano, Out: out, From: from})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		w := map[string][]float32{}
		for i, name := range set.Names() {
			v, err := set.Parameters()[i].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			w[name] = v
		}
		return w
	}
	dir := t.TempDir()
	first := train(filepath.Join(dir, "first"), "", 5e-2, 4)
	cont := train(filepath.Join(dir, "cont"), filepath.Join(dir, "first"), 1e-12, 4)
	fresh := train(filepath.Join(dir, "fresh"), "", 1e-12, 4)
	var moved, sourceB, freshB float64
	for name, w := range first {
		for i := range w {
			moved = max(moved, math.Abs(float64(cont[name][i]-w[i])))
			if strings.Contains(name, "lora_B") {
				sourceB = max(sourceB, math.Abs(float64(w[i])))
				freshB = max(freshB, math.Abs(float64(fresh[name][i])))
			}
		}
	}
	if sourceB == 0 || moved > 1e-6 || freshB > 1e-6 {
		t.Fatalf("source |B| %g, continued weights moved by %g from it (want ≤ 1e-6), fresh |B| %g (want ≈ 0)", sourceB, moved, freshB)
	}
	_, _, err = finetune.Train(context.Background(), m, tok, tk, exs, exs[:2], finetune.Recipe{Epochs: 1, Batch: 8, LR: 1e-3, Rank: 8, Seed: 3},
		finetune.TrainEnv{Base: nano, Out: filepath.Join(dir, "bad"), From: filepath.Join(dir, "first")})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "first")) {
		t.Fatalf("a rank-4 adapter continued at rank 8: %v, want an error naming the folder", err)
	}
}

// TestUsualLR: pioneer-nano's size takes the high LoRA rate, SmolLM2-135M's the lower
// one, and training every weight a fifth of either.
func TestUsualLR(t *testing.T) {
	for _, c := range []struct {
		params int64
		full   bool
		want   float64
	}{{6_800_000, false, 5e-3}, {6_800_000, true, 1e-3}, {134_515_008, false, 1e-3}, {134_515_008, true, 2e-4}, {50_000_000, false, 1e-3}} {
		if got := finetune.UsualLR(c.params, c.full); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("UsualLR(%d, full %v) = %g, want %g", c.params, c.full, got, c.want)
		}
	}
}
