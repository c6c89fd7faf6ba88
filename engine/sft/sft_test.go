package sft

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/model/chat"
)

// byteEncoder encodes text as bytes + 10, with 1 as BOS when special tokens are asked for.
type byteEncoder struct{}

func (byteEncoder) Encode(text string, special bool) ([]int, error) {
	var out []int
	if special {
		out = append(out, 1)
	}
	for _, b := range []byte(text) {
		out = append(out, int(b)+10)
	}
	return out, nil
}

func (byteEncoder) Decode(ids []int, _ bool) string {
	var b []byte
	for _, id := range ids {
		if id >= 10 {
			b = append(b, byte(id-10))
		}
	}
	return string(b)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "train.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	p := writeFile(t, `{"prompt": "2+2=", "completion": "4"}

{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
{"text": "plain text"}
`)
	ex, skipped, err := Read(p, false)
	if err != nil || len(ex) != 3 || len(skipped) != 0 {
		t.Fatalf("%v %v %v", ex, skipped, err)
	}
	if ex[0].Prompt != "2+2=" || ex[1].Line != 3 || len(ex[1].Messages) != 2 || ex[2].Text != "plain text" {
		t.Fatalf("parsed %+v", ex)
	}
	bad := writeFile(t, `{"prompt": "a", "completion": "b"}
{"prompt": "a"
{"messages": [{"role": "user", "content": "no reply"}]}
{"something": 1}
{"prompt": "x", "completion": "y"}
`)
	if _, _, err := Read(bad, false); err == nil || !strings.Contains(err.Error(), "train.jsonl:2") {
		t.Fatalf("malformed line: %v", err)
	}
	ex, skipped, err = Read(bad, true)
	if err != nil || len(ex) != 2 || len(skipped) != 3 || skipped[0].Line != 2 || skipped[1].Line != 3 || skipped[2].Line != 4 {
		t.Fatalf("skip: %v %v %v", ex, skipped, err)
	}
	if !strings.Contains(skipped[1].Error(), "assistant") {
		t.Fatalf("reason %v", skipped[1])
	}
	if _, _, err := Read(writeFile(t, "\n\n"), false); err == nil || !strings.Contains(err.Error(), "no training examples") {
		t.Fatalf("empty: %v", err)
	}
}

func TestTokenizeLossOnCompletionOnly(t *testing.T) {
	seq, err := Tokenize(Record{Prompt: "ab", Completion: "c", Line: 7}, byteEncoder{}, TokenizeOptions{EOS: 2})
	if err != nil {
		t.Fatal(err)
	}
	// prompt: BOS a b; completion: c EOS
	wantIDs := []int{1, 'a' + 10, 'b' + 10, 'c' + 10, 2}
	wantLabels := []int{-100, -100, -100, 'c' + 10, 2}
	if !slices.Equal(seq.IDs, wantIDs) || !slices.Equal(seq.Labels, wantLabels) {
		t.Fatalf("ids %v labels %v", seq.IDs, seq.Labels)
	}
	txt, _ := Tokenize(Record{Text: "xy"}, byteEncoder{}, TokenizeOptions{EOS: -1})
	if !slices.Equal(txt.Labels, txt.IDs) {
		t.Fatalf("text labels %v", txt.Labels)
	}
	if _, err := Tokenize(Record{Prompt: "abcdef", Completion: "g", Line: 3}, byteEncoder{}, TokenizeOptions{EOS: 2, MaxLen: 4}); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("too long: %v", err)
	}
	if _, err := Tokenize(Record{Prompt: "abcdef", Completion: "g"}, byteEncoder{}, TokenizeOptions{EOS: 2, MaxLen: 4, Truncate: true}); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Fatalf("truncated to no targets: %v", err)
	}
	cut, err := Tokenize(Record{Prompt: "a", Completion: "bcdef"}, byteEncoder{}, TokenizeOptions{EOS: 2, MaxLen: 4, Truncate: true})
	if err != nil || len(cut.IDs) != 4 {
		t.Fatalf("truncate: %v %v", cut, err)
	}
}

func TestTokenizeChat(t *testing.T) {
	tpl, err := chat.Load("../../testdata/chat/chatml_tokenizer_config.json")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []chat.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}
	seq, err := Tokenize(Record{Messages: msgs}, byteEncoder{}, TokenizeOptions{Template: tpl, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := tpl.Render(msgs[:1], chat.Options{AddGenerationPrompt: true})
	full, _ := tpl.Render(msgs, chat.Options{})
	n := len(head) // one token per byte, no BOS for template text
	if len(seq.IDs) != len(full) {
		t.Fatalf("%d ids for %d bytes", len(seq.IDs), len(full))
	}
	for i := range seq.Labels {
		if (i < n) != (seq.Labels[i] == -100) {
			t.Fatalf("label %d = %d (prompt is %d tokens)", i, seq.Labels[i], n)
		}
	}
	if !strings.Contains(full[n:], "hello") {
		t.Fatalf("target %q", full[n:])
	}
	if _, err := Tokenize(Record{Messages: msgs, Line: 4}, byteEncoder{}, TokenizeOptions{}); err == nil || !strings.Contains(err.Error(), "chat template") {
		t.Fatalf("no template: %v", err)
	}
}
