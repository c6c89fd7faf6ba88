package serve_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/serve"
)

// TestServeClassifies: with a classification task served, a completion of its prompt
// is one of its labels — the one the task's own evaluation picks with that adapter —
// with every label's probability on request, streamed or not; other prompts, and
// constrained false, are decoded freely.
func TestServeClassifies(t *testing.T) {
	tk, d := topics(t)
	p, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	test, err := tk.Split("test")
	if err != nil {
		t.Fatal(err)
	}
	// what the task's evaluation answers with the adapter attached alone
	set, err := lora.Load(d.Deployed, p.LM)
	if err != nil {
		t.Fatal(err)
	}
	prompts := make([][]int, len(test))
	for i, ex := range test {
		if prompts[i], err = p.Tokenizer.Encode(tk.PromptText(ex.Text), true); err != nil {
			t.Fatal(err)
		}
	}
	want, err := tk.Predict(context.Background(), p.LM, p.Tokenizer, prompts, task.EvalOptions{EOS: p.EOS, Batch: 8})
	set.Close()
	if err != nil {
		t.Fatal(err)
	}

	free := greedy(t, p, tk.PromptText(test[0].Text), 6) // before the server mixes adapters in
	_, c := start(t, serve.Config{Model: p, ModelName: "nano", Adapters: map[string]string{"topics": d.Deployed}, Task: tk})
	for i, ex := range test[:12] {
		code, b := c.do("POST", "/v1/completions", map[string]any{"model": "topics", "prompt": tk.PromptText(ex.Text), "label_probs": i%2 == 0})
		var got struct {
			Choices []struct {
				Text       string             `json:"text"`
				Finish     string             `json:"finish_reason"`
				LabelProbs map[string]float64 `json:"label_probs"`
			} `json:"choices"`
		}
		if code != 200 || jsonInto(b, &got) != nil || len(got.Choices) != 1 {
			t.Fatalf("%q: %d %s", ex.Text, code, b)
		}
		ch := got.Choices[0]
		if ch.Text != tk.LabelTarget(want[i]) || ch.Finish != "stop" {
			t.Fatalf("%q: answered %q (%s), the task's evaluation %q", ex.Text, ch.Text, ch.Finish, tk.LabelTarget(want[i]))
		}
		if i%2 == 0 {
			sum, best, top := 0.0, "", -1.0
			for l, pr := range ch.LabelProbs {
				sum += pr
				if pr > top {
					best, top = l, pr
				}
			}
			if len(ch.LabelProbs) != len(tk.Labels) || math.Abs(sum-1) > 1e-6 || best != want[i] {
				t.Fatalf("%q: label_probs %v (sum %v), answer %s", ex.Text, ch.LabelProbs, sum, want[i])
			}
		} else if ch.LabelProbs != nil {
			t.Fatalf("label_probs unasked: %s", b)
		}
	}
	// streamed: the label, then the probabilities with the finish reason
	code, b := c.do("POST", "/v1/completions", map[string]any{"model": "topics", "prompt": tk.PromptText(test[0].Text), "stream": true, "label_probs": true})
	chunks, done := events(t, b)
	text := ""
	for _, ch := range chunks {
		text += ch.Choices[0].Text
	}
	if code != 200 || !done || text != tk.LabelTarget(want[0]) {
		t.Fatalf("stream: %d %q: %s", code, text, b)
	}
	// free decoding: another prompt, or constrained false (the base model's own answer)
	code, b = c.do("POST", "/v1/completions", map[string]any{"model": "nano", "prompt": tk.PromptText(test[0].Text), "max_tokens": 6, "constrained": false})
	if code != 200 || parse(t, b).Choices[0].Text != free {
		t.Fatalf("constrained false: %d %s, want %q", code, b, free)
	}
	if code, b := c.do("POST", "/v1/completions", map[string]any{"prompt": "no template here", "label_probs": true}); code != 400 {
		t.Fatalf("label_probs on a free prompt: %d %s", code, b)
	}
}

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
