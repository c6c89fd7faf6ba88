package finetune_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// TestSequencesFitLongInputs: an input longer than the context is cut (its end dropped)
// so that the whole target is trained on; short examples are untouched.
func TestSequencesFitLongInputs(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join("..", "..", "data", "models", "pioneer-nano", "tokenizer.json"))
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
	long := strings.Repeat("Ann: what shall I bring? Bob: a cake would be lovely. ", 40)
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
	var trained []int
	for i, l := range s.Labels {
		if l != -100 {
			trained = append(trained, s.IDs[i])
		}
	}
	if len(trained) != len(want)+1 { // the target and the end token
		t.Fatalf("%d target tokens trained on, want the whole target's %d and the end token", len(trained), len(want))
	}
	full, err := finetune.Sequences(tk, tok, exs[1:], 0, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs[1].IDs) != len(full[0].IDs) {
		t.Fatal("a short example was changed")
	}
}
