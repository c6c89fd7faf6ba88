package data_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// TestNanoHeldoutPerplexity loads pioneer-nano the way users get it (the embedded copy,
// written out by ResolveModel, through model.Load) and checks the perplexity of the first
// 16,384 held-out tokens against the model card (the whole held-out text takes 15 s on
// 2 cores; bench/nano measures it and records heldout_perplexity).
func TestNanoHeldoutPerplexity(t *testing.T) {
	card, err := data.ReadNanoCard()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := data.ResolveModel(data.NanoModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Info().Params; got != card.Params {
		t.Fatalf("%d parameters, the card says %d", got, card.Params)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "nano", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode(string(b), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 85906 {
		t.Fatalf("held-out text is %d tokens, the card says 85,906", len(ids))
	}
	x := make([]int32, len(ids))
	for i, v := range ids {
		x[i] = int32(v)
	}
	check := func(maxTokens int, want float64) {
		loss, err := training.EvalLoss(training.Full{Model: m}, x, 8, 256, maxTokens)
		if err != nil {
			t.Fatal(err)
		}
		// CPU kernels and thread counts move the last digits; 0.05 % of the perplexity is
		// far below what a different model would show.
		if got := math.Exp(loss); math.Abs(got-want) > 5e-4*want {
			t.Fatalf("held-out perplexity (%d tokens) %.4f, the card says %.4f", maxTokens, got, want)
		}
	}
	check(16384, card.HeldoutPerplexity16k)
}

func TestResolveModel(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := data.ResolveModel(data.NanoModel)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// A second call reuses the folder; a path is returned unchanged.
	again, err := data.ResolveModel(data.NanoModel)
	if err != nil || again != dir {
		t.Fatalf("second resolve: %q %v", again, err)
	}
	if p, _ := data.ResolveModel("some/folder"); p != "some/folder" {
		t.Fatalf("path changed to %q", p)
	}
}
