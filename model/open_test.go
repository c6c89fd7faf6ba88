package model_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// TestOpenBundledModel: a bundled model opens by name with its tokenizer, special ids and
// chat template.
func TestOpenBundledModel(t *testing.T) {
	p, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name != data.NanoModel || p.LM.Info().VocabSize != 8192 || p.Tokenizer.VocabSize() != 8192 {
		t.Fatalf("opened %s: vocabulary %d, tokenizer %d", p.Dir, p.LM.Info().VocabSize, p.Tokenizer.VocabSize())
	}
	if len(p.EOS) != 1 || p.EOS[0] != 0 || p.Pad != 0 || p.FirstEOS() != 0 {
		t.Fatalf("special ids: eos %v pad %d", p.EOS, p.Pad)
	}
	ids, err := p.Tokenizer.Encode("hello world", false)
	if err != nil || len(ids) == 0 {
		t.Fatalf("encode: %v %v", ids, err)
	}
	if _, err := p.ChatTemplate(); err != nil && !errors.Is(err, chat.ErrNoTemplate) {
		t.Fatalf("chat template: %v", err)
	}
}

// TestOpenErrors: what is not a usable model folder says so, naming the problem.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A model folder whose tokenizer is larger than its vocabulary.
	mixed := filepath.Join(dir, "mixed")
	if err := os.MkdirAll(mixed, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join("../testdata/models/llama", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mixed, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := os.ReadFile("../data/models/pioneer-nano/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mixed, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		file:                          "not a folder",
		"../testdata/models/llama":    "tokenizer.json", // no tokenizer in the fixture
		mixed:                         "do not belong together",
	} {
		if _, err := model.Open(ref, model.OpenOptions{Device: torch.CPU}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s): %v, want an error mentioning %q", ref, err, want)
		}
	}
}

func TestPadID(t *testing.T) {
	for _, c := range []struct {
		g    model.GenerationConfig
		want int
	}{
		{model.GenerationConfig{PadTokenID: 5, EosTokenIDs: []int{2}}, 5},
		{model.GenerationConfig{PadTokenID: -1, EosTokenIDs: []int{2, 3}}, 2},
		{model.GenerationConfig{PadTokenID: -1}, 0},
	} {
		if got := model.PadID(c.g); got != c.want {
			t.Errorf("PadID(%+v) = %d, want %d", c.g, got, c.want)
		}
	}
}
