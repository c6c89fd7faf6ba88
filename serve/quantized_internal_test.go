package serve

import (
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// TestLoadFullQuantized: a deployment version fine-tuned in every weight, swapped in by a
// server that decodes from quantized weights, comes with quantized weights of its own
// (its output projection's copy is there); without Quantized it has none.
func TestLoadFullQuantized(t *testing.T) {
	p, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := filepath.Join(t.TempDir(), "full")
	if err := p.LM.Save(dir); err != nil { // stands for a fully fine-tuned version
		t.Fatal(err)
	}
	for _, quantized := range []bool{true, false} {
		s := &Server{cfg: Config{Model: p, Quantized: quantized}}
		lm, err := s.loadFull(dir)
		if err != nil {
			t.Fatal(err)
		}
		head := lm.(interface{ OutputProjection() *model.Linear }).OutputProjection()
		if got := head.Quantized != nil; got != quantized {
			t.Fatalf("Quantized %v: the version's output projection has a quantized copy: %v", quantized, got)
		}
		lm.Close()
	}
}
