package infer_test

import (
	"slices"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/infer"
)

// TestDecoderJoinsAndLeaves: sequences that join a running decoder at different steps,
// end at different lengths or are cancelled get exactly the tokens of decoding each one
// alone without a cache, with and without a sliding window; the cache drops ended rows.
func TestDecoderJoinsAndLeaves(t *testing.T) {
	for _, window := range []int{0, 4} {
		m := tinyLlama(t, window)
		var tags [][]int
		d, err := infer.NewDecoder(m, infer.DecoderOptions{SetRows: func(t []int) error {
			tags = append(tags, append([]int(nil), t...))
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		type plan struct {
			prompt []int
			n, at  int // tokens wanted, step it joins at
		}
		plans := []plan{
			{prompts[0], 9, 0}, {prompts[1], 3, 0}, {prompts[2], 6, 2}, {[]int{7, 7, 1}, 8, 2},
			{[]int{4, 1, 30, 2, 9, 9, 9, 12, 40, 1, 1, 3, 5, 8, 2, 11}, 5, 5}, {[]int{2}, 1, 6},
		}
		got := map[int][]int{}
		ids := map[int]int{} // sequence id -> plan
		ended := map[int]string{}
		cancelled := -1
		for step := 0; step < 40 && (step < 7 || d.Len() > 0); step++ {
			for i, p := range plans {
				if p.at == step {
					id, err := d.Add(infer.Request{Prompt: p.prompt, MaxNewTokens: p.n, Tag: i})
					if err != nil {
						t.Fatal(err)
					}
					ids[id] = i
				}
			}
			toks, err := d.Step()
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range toks {
				if _, done := ended[tk.Seq]; done {
					t.Fatalf("sequence %d got token %d after it ended", tk.Seq, tk.Token)
				}
				got[tk.Seq] = append(got[tk.Seq], tk.Token)
				if tk.Reason != "" {
					ended[tk.Seq] = tk.Reason
				}
			}
			if step == 3 { // plan 3 is cancelled after its first tokens
				for id, i := range ids {
					if i == 3 {
						cancelled = id
						d.Cancel(id)
					}
				}
			}
		}
		if d.Len() != 0 {
			t.Fatalf("window %d: %d sequences still decoding", window, d.Len())
		}
		for id, i := range ids {
			p := plans[i]
			want := naiveGreedy(t, m, p.prompt, p.n)
			if id == cancelled {
				if _, ok := ended[id]; ok || len(got[id]) == 0 || len(got[id]) >= p.n || !slices.Equal(got[id], want[:len(got[id])]) {
					t.Fatalf("window %d: cancelled sequence got %v (ended %q), naive %v", window, got[id], ended[id], want)
				}
				continue
			}
			if ended[id] != "length" || !slices.Equal(got[id], want) {
				t.Fatalf("window %d, plan %d: %v (%s), naive %v", window, i, got[id], ended[id], want)
			}
		}
		// every forward pass named its rows' tags, and the joiners of step 2 were
		// prefilled together
		if !slices.ContainsFunc(tags, func(t []int) bool { return slices.Equal(t, []int{2, 3}) }) {
			t.Fatalf("window %d: no prefill of plans 2 and 3 together in %v", window, tags)
		}
		if d.Rows() > 0 {
			if _, err := d.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDecoderSamplesPerSequence: a sampled sequence's tokens depend on its seed, not on
// what is decoded beside it; a stop token ends it without output.
func TestDecoderSamplesPerSequence(t *testing.T) {
	m := tinyLlama(t, 0)
	run := func(neighbours int, seed uint64, stop []int) ([]int, string) {
		d, err := infer.NewDecoder(m, infer.DecoderOptions{StopTokens: stop})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for i := 0; i < neighbours; i++ {
			if _, err := d.Add(infer.Request{Prompt: prompts[i%3], MaxNewTokens: 12, Temperature: 1, Seed: uint64(100 + i)}); err != nil {
				t.Fatal(err)
			}
		}
		me, err := d.Add(infer.Request{Prompt: prompts[0], MaxNewTokens: 12, Temperature: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		reason := ""
		for d.Len() > 0 {
			toks, err := d.Step()
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range toks {
				if tk.Seq == me {
					if tk.Token >= 0 {
						got = append(got, tk.Token)
					}
					reason = tk.Reason
				}
			}
		}
		return got, reason
	}
	alone, _ := run(0, 7, nil)
	crowded, _ := run(5, 7, nil)
	other, _ := run(0, 8, nil)
	if !slices.Equal(alone, crowded) {
		t.Fatalf("seed 7 alone %v, beside 5 others %v", alone, crowded)
	}
	if slices.Equal(alone, other) {
		t.Fatalf("seeds 7 and 8 sampled the same %v", alone)
	}
	stopped, reason := run(2, 7, []int{alone[4]})
	first := slices.Index(alone, alone[4])
	if reason != "stop_token" || !slices.Equal(stopped, alone[:first]) {
		t.Fatalf("stop token %d: %v (%s), unstopped %v", alone[4], stopped, reason, alone)
	}
}

func TestDecoderRejectsBadRequests(t *testing.T) {
	m := tinyLlama(t, 0)
	if _, err := infer.NewDecoder(m, infer.DecoderOptions{PadID: 50}); err == nil {
		t.Fatal("pad id outside the vocabulary accepted")
	}
	d, err := infer.NewDecoder(m, infer.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, r := range map[string]infer.Request{
		"empty":       {MaxNewTokens: 3},
		"no tokens":   {Prompt: []int{1}},
		"too long":    {Prompt: make([]int, 60), MaxNewTokens: 5},
		"bad token":   {Prompt: []int{1, 50}, MaxNewTokens: 2},
		"temperature": {Prompt: []int{1}, MaxNewTokens: 2, Temperature: -1},
		"top-p":       {Prompt: []int{1}, MaxNewTokens: 2, TopP: 2},
	} {
		if _, err := d.Add(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if d.Len() != 0 {
		t.Fatalf("refused requests counted: %d", d.Len())
	}
}
