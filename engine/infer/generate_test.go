package infer_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/llama"
)

func tinyLlama(t *testing.T, window int) *llama.Model {
	t.Helper()
	cfg := llama.Config{
		VocabSize: 50, HiddenSize: 32, IntermediateSize: 48, NumHiddenLayers: 2, NumAttentionHeads: 4,
		NumKeyValueHeads: 2, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, InitializerRange: 0.3,
	}
	if window > 0 {
		cfg.Architectures = []string{"MistralForCausalLM"}
		cfg.ModelType = "mistral"
		cfg.SlidingWindow = &window
	}
	m, err := llama.New(cfg, torch.CPU, torch.Float32, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// naiveGreedy re-runs the full forward pass for every new token: no cache, no padding.
func naiveGreedy(t *testing.T, m *llama.Model, prompt []int, n int) []int {
	seq := append([]int(nil), prompt...)
	for i := 0; i < n; i++ {
		s := torch.NewScope()
		ids := make([]int64, len(seq))
		for j, v := range seq {
			ids[j] = int64(v)
		}
		var best float64
		err := torch.NoGrad(func() error {
			logits := m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, torch.CPU))
			var err error
			best, err = s.Argmax(s.Select(s.Select(logits, 0, 0), 0, int64(len(ids)-1)), 0, false).Item()
			return err
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, int(best))
	}
	return seq[len(prompt):]
}

var prompts = [][]int{{3, 14, 15, 9, 2, 6}, {5, 3}, {8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2}}

// TestGenerateMatchesNaiveDecoding: batched, left-padded, cached greedy decoding gives
// exactly the tokens of re-running the whole sequence for each new token.
func TestGenerateMatchesNaiveDecoding(t *testing.T) {
	for _, window := range []int{0, 4} {
		m := tinyLlama(t, window)
		got, err := infer.Generate(m, prompts, infer.GenerateOptions{MaxNewTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			want := naiveGreedy(t, m, p, 10)
			if !slices.Equal(got[i].Tokens, want) || got[i].Reason != "length" {
				t.Fatalf("window %d, prompt %d: batched %v (%s), naive %v", window, i, got[i].Tokens, got[i].Reason, want)
			}
		}
	}
}

func TestGenerateSamplingAndStops(t *testing.T) {
	m := tinyLlama(t, 0)
	o := infer.GenerateOptions{MaxNewTokens: 12, Temperature: 1, Seed: 9}
	a, err := infer.Generate(m, prompts, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := infer.Generate(m, prompts, o)
	greedy, _ := infer.Generate(m, prompts, infer.GenerateOptions{MaxNewTokens: 12})
	differs := false
	for i := range a {
		if !slices.Equal(a[i].Tokens, b[i].Tokens) {
			t.Fatal("same seed, different samples")
		}
		if !slices.Equal(a[i].Tokens, greedy[i].Tokens) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("sampling at temperature 1 reproduced greedy decoding exactly")
	}
	// top-k 1 is greedy whatever the temperature; a tiny top-p likewise
	for _, o := range []infer.GenerateOptions{
		{MaxNewTokens: 12, Temperature: 2, TopK: 1, Seed: 1},
		{MaxNewTokens: 12, Temperature: 2, TopP: 1e-6, Seed: 1},
	} {
		c, err := infer.Generate(m, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c {
			if !slices.Equal(c[i].Tokens, greedy[i].Tokens) {
				t.Fatalf("%+v: %v, greedy %v", o, c[i].Tokens, greedy[i].Tokens)
			}
		}
	}
	// a stop token ends the row before it; other rows go on
	stopAt := greedy[0].Tokens[3]
	c, _ := infer.Generate(m, prompts, infer.GenerateOptions{MaxNewTokens: 12, StopTokens: []int{stopAt}})
	first := 0
	for first < len(greedy[0].Tokens) && greedy[0].Tokens[first] != stopAt {
		first++
	}
	if c[0].Reason != "stop_token" || !slices.Equal(c[0].Tokens, greedy[0].Tokens[:first]) {
		t.Fatalf("stop token %d: %v (%s), greedy %v", stopAt, c[0].Tokens, c[0].Reason, greedy[0].Tokens)
	}
	// stop strings over decoded text
	decode := func(ids []int) string {
		var b strings.Builder
		for _, id := range ids {
			b.WriteByte(byte('a' + id%26))
		}
		return b.String()
	}
	want := decode(greedy[1].Tokens[2:4])
	c, _ = infer.Generate(m, prompts[1:2], infer.GenerateOptions{MaxNewTokens: 12, StopStrings: []string{want}, Decode: decode})
	if c[0].Reason != "stop_string" || !strings.Contains(decode(c[0].Tokens), want) || len(c[0].Tokens) > 4 {
		t.Fatalf("stop string %q: %v (%s)", want, c[0].Tokens, c[0].Reason)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	m := tinyLlama(t, 0)
	for _, c := range []struct {
		prompts [][]int
		o       infer.GenerateOptions
		want    string
	}{
		{[][]int{{1}}, infer.GenerateOptions{}, "max new tokens"},
		{[][]int{{}}, infer.GenerateOptions{MaxNewTokens: 2}, "empty"},
		{[][]int{{99}}, infer.GenerateOptions{MaxNewTokens: 2}, "outside the vocabulary"},
		{[][]int{{1}}, infer.GenerateOptions{MaxNewTokens: 100}, "positions"},
		{[][]int{{1}}, infer.GenerateOptions{MaxNewTokens: 2, TopP: 2}, "top-p"},
		{[][]int{{1}}, infer.GenerateOptions{MaxNewTokens: 2, StopStrings: []string{"x"}}, "decoder"},
	} {
		if _, err := infer.Generate(m, c.prompts, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v %+v: err %v, want %q", c.prompts, c.o, err, c.want)
		}
	}
}

// TestScoreAndClassify: Score's log-likelihood equals the sum of log-softmax values read
// off a plain forward pass, and Classify picks the most likely label.
func TestScoreAndClassify(t *testing.T) {
	m := tinyLlama(t, 0)
	prompt, cont := []int{3, 14, 15, 9}, []int{2, 6, 5}
	sc, err := infer.Score(m, [][]int{prompt, {7}}, [][]int{cont, {1, 2}}, 8)
	if err != nil {
		t.Fatal(err)
	}
	seq := append(append([]int(nil), prompt...), cont...)
	ids := make([]int64, len(seq))
	for i, v := range seq {
		ids[i] = int64(v)
	}
	s := torch.NewScope()
	defer s.Close()
	var want float64
	_ = torch.NoGrad(func() error {
		lp := s.LogSoftmax(s.Select(m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, torch.CPU)), 0, 0), -1)
		vals, _ := lp.Float32s()
		V := 50
		for t := len(prompt) - 1; t < len(seq)-1; t++ {
			want += float64(vals[t*V+seq[t+1]])
		}
		return nil
	})
	if math.Abs(sc[0].LogProb-want) > 1e-4 || len(sc[0].TokenLogP) != 3 || len(sc[1].TokenLogP) != 2 {
		t.Fatalf("score %v (%v), want %v", sc[0].LogProb, sc[0].TokenLogP, want)
	}
	labels := [][]int{{2, 6, 5}, {40}, {11, 12}}
	cls, err := infer.Classify(m, [][]int{prompt}, labels, 4)
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for j := range labels {
		one, _ := infer.Score(m, [][]int{prompt}, [][]int{labels[j]}, 1)
		if math.Abs(one[0].LogProb-cls[0].LogProbs[j]) > 1e-5 {
			t.Fatalf("label %d: classify %v, score %v", j, cls[0].LogProbs[j], one[0].LogProb)
		}
		if cls[0].LogProbs[j] > cls[0].LogProbs[best] {
			best = j
		}
	}
	if cls[0].Label != best {
		t.Fatalf("classify chose %d, most likely is %d", cls[0].Label, best)
	}
}

// TestClassifyPackedMatchesScore: the prefix-tree packing gives every label the
// log-likelihood that scoring it alone after its prompt gives, for labels that share
// prefixes, one that is a prefix of another, and prompts of different lengths, on each
// architecture family.
func TestClassifyPackedMatchesScore(t *testing.T) {
	labels := [][]int{{2, 6, 5}, {2, 6}, {2, 7, 1, 9}, {40}, {11, 12}, {11, 13}, {2}}
	for _, dir := range []string{"llama", "qwen3", "gpt2", "mistral"} {
		t.Run(dir, func(t *testing.T) {
			m, err := model.Load(filepath.Join("..", "..", "testdata", "models", dir), torch.CPU, torch.Float32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cls, err := infer.Classify(m, prompts, labels, 2)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				for j, l := range labels {
					one, err := infer.Score(m, [][]int{p}, [][]int{l}, 1)
					if err != nil {
						t.Fatal(err)
					}
					if d := math.Abs(one[0].LogProb - cls[i].LogProbs[j]); d > 1e-4 {
						t.Fatalf("prompt %d label %d: packed %v, alone %v", i, j, cls[i].LogProbs[j], one[0].LogProb)
					}
				}
			}
		})
	}
	m := tinyLlama(t, 0)
	if _, err := infer.Classify(m, prompts, [][]int{{1}, {}}, 2); err == nil {
		t.Fatal("an empty label was accepted")
	}
	if _, err := infer.Classify(m, prompts, [][]int{{1}, {99}}, 2); err == nil {
		t.Fatal("a label outside the vocabulary was accepted")
	}
}

// TestSampleGreedyAndSeeded: greedy sampling re-reads the window and picks each argmax,
// so it matches naive decoding; a seed gives the same samples.
func TestSampleGreedyAndSeeded(t *testing.T) {
	m := tinyLlama(t, 0)
	prompt := []int32{3, 14, 15}
	out, err := infer.Sample(m, prompt, 6, 64, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := naiveGreedy(t, m, []int{3, 14, 15}, 6)
	for i := range want {
		if int(out[i]) != want[i] {
			t.Fatalf("greedy sample %v, naive decoding %v", out, want)
		}
	}
	a, _ := infer.Sample(m, prompt, 20, 8, 1, 7)
	b, _ := infer.Sample(m, prompt, 20, 8, 1, 7)
	if !slices.Equal(a, b) || len(a) != 20 {
		t.Fatalf("same seed, different samples: %v %v", a, b)
	}
	if _, err := infer.Sample(m, nil, 5, 4, 1, 1); err == nil {
		t.Fatal("empty prompt accepted")
	}
}

// TestGenerateStreamsTokens: OnToken sees every row's tokens in order as they come, and
// ending a row from it leaves the others as they were.
func TestGenerateStreamsTokens(t *testing.T) {
	m := tinyLlama(t, 0)
	greedy, err := infer.Generate(m, prompts, infer.GenerateOptions{MaxNewTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([][]int, len(prompts))
	out, err := infer.Generate(m, prompts, infer.GenerateOptions{MaxNewTokens: 10, OnToken: func(row, tok int) bool {
		seen[row] = append(seen[row], tok)
		return row != 1 || len(seen[1]) < 3 // row 1's client goes after 3 tokens
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(seen[i], out[i].Tokens) {
			t.Fatalf("row %d: streamed %v, returned %v", i, seen[i], out[i].Tokens)
		}
	}
	if out[1].Reason != "cancelled" || !slices.Equal(out[1].Tokens, greedy[1].Tokens[:3]) {
		t.Fatalf("the cancelled row: %v (%s), greedy %v", out[1].Tokens, out[1].Reason, greedy[1].Tokens)
	}
	for _, i := range []int{0, 2} {
		if !slices.Equal(out[i].Tokens, greedy[i].Tokens) {
			t.Fatalf("row %d changed when row 1 was cancelled: %v, greedy %v", i, out[i].Tokens, greedy[i].Tokens)
		}
	}
}
