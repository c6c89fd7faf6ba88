package finetune_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/training"
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
