package infer

import (
	"fmt"
	"math"
	"runtime"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// GenerateOptions configure Generate. The zero value decodes greedily with no stop
// condition but MaxNewTokens.
type GenerateOptions struct {
	MaxNewTokens int
	Temperature  float64            // 0: greedy (argmax)
	TopK         int                // keep the K most likely tokens; 0: off
	TopP         float64            // keep the smallest set with probability >= TopP; 0 or 1: off
	Seed         uint64             // sampling generator seed
	StopTokens   []int              // end a row when it produces one of these (not included in the output)
	StopStrings  []string           // end a row when its decoded text contains one (the output keeps it)
	Decode       func([]int) string // turns a row's new tokens into text; required with StopStrings
	PadID        int                // fills left padding and finished rows
	// OnToken, when set, is called with each token as it joins a row's output (a
	// streaming server sends it on); returning false ends that row (Reason "cancelled"),
	// as when its client has gone.
	OnToken func(row, token int) bool
}

// Completion is one row's result.
type Completion struct {
	Tokens []int  // new tokens
	Reason string // "stop_token", "stop_string", "length" or "cancelled" (OnToken said so)
}

func (o *GenerateOptions) validate(vocab int) error {
	switch {
	case o.MaxNewTokens <= 0:
		return fmt.Errorf("max new tokens must be positive, got %d", o.MaxNewTokens)
	case o.Temperature < 0 || math.IsNaN(o.Temperature):
		return fmt.Errorf("temperature must be >= 0, got %v", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k must be >= 0, got %d", o.TopK)
	case o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("top-p must be in [0, 1], got %v", o.TopP)
	case len(o.StopStrings) > 0 && o.Decode == nil:
		return fmt.Errorf("stop strings need a decoder")
	case o.PadID < 0 || o.PadID >= vocab:
		return fmt.Errorf("pad id %d outside the vocabulary of %d", o.PadID, vocab)
	}
	return nil
}

// Generate continues each prompt (token ids) with up to MaxNewTokens tokens, all rows
// decoded together by a Decoder (left-padded prompts, a mask that keeps padding out of
// attention, positions counted from each row's first real token, a key/value cache so
// that each new token costs one position). Sampled row i draws from a generator seeded
// with Seed+i.
func Generate(m model.CausalLM, prompts [][]int, o GenerateOptions) ([]Completion, error) {
	info := m.Info()
	if err := o.validate(info.VocabSize); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(prompts) == 0 {
		return nil, nil
	}
	// One OS thread for every step: libtorch's CPU thread pool belongs to the thread that
	// calls it, and a pool per thread would compete for the cores.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, err := NewDecoder(m, DecoderOptions{StopTokens: o.StopTokens, PadID: o.PadID})
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer d.Close()
	for i, p := range prompts {
		if _, err := d.Add(Request{Prompt: p, MaxNewTokens: o.MaxNewTokens, Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP, Seed: o.Seed + uint64(i)}); err != nil {
			return nil, fmt.Errorf("generate: prompt %d: %w", i, err)
		}
	}
	out := make([]Completion, len(prompts))
	for d.Len() > 0 {
		toks, err := d.Step()
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		for _, t := range toks {
			c := &out[t.Seq]
			if t.Token < 0 {
				c.Reason = "stop_token"
				continue
			}
			c.Tokens = append(c.Tokens, t.Token)
			if len(o.StopStrings) > 0 {
				text := o.Decode(c.Tokens)
				for _, ss := range o.StopStrings {
					if ss != "" && strings.Contains(text, ss) {
						c.Reason = "stop_string"
					}
				}
			}
			if o.OnToken != nil && !o.OnToken(t.Seq, t.Token) && c.Reason == "" {
				c.Reason = "cancelled"
			}
			if c.Reason == "" {
				c.Reason = t.Reason
			}
			if c.Reason != "" && t.Reason == "" {
				d.Cancel(t.Seq)
			}
		}
	}
	return out, nil
}

// choose picks one token per row of logits (B, V): argmax, or a sample after temperature,
// top-k and top-p filtering.
func choose(s *torch.Scope, logits *torch.Tensor, o GenerateOptions, g *torch.Generator) ([]int64, error) {
	var next *torch.Tensor
	if o.Temperature == 0 {
		next = s.Argmax(logits, -1, false)
	} else {
		l := s.DivScalar(s.To(logits, torch.Float32, logits.Device()), o.Temperature)
		if o.TopK > 0 && o.TopK < int(logits.Shape()[1]) {
			vals, _ := s.TopK(l, int64(o.TopK), -1)
			kth := s.Slice(vals, 1, int64(o.TopK-1), int64(o.TopK), 1) // (B, 1)
			l = s.MaskedFill(l, s.Lt(l, kth), math.Inf(-1))
		}
		if o.TopP > 0 && o.TopP < 1 {
			sorted, _ := s.Sort(l, -1, true)
			probs := s.Softmax(sorted, -1)
			before := s.Sub(s.Cumsum(probs, -1), probs) // mass of the more likely tokens
			keep := s.To(s.LtScalar(before, o.TopP), torch.Int64, logits.Device())
			last := s.To(s.AddScalar(s.SumDims(keep, []int64{-1}, true), -1), torch.Int64, logits.Device())
			threshold := s.Gather(sorted, 1, last) // the least likely kept logit, (B, 1)
			l = s.MaskedFill(l, s.Lt(l, threshold), math.Inf(-1))
		}
		next = s.Reshape(s.Multinomial(s.Softmax(l, -1), 1, g), -1)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return next.Int64s()
}

// Scored is the log-likelihood of a continuation.
type Scored struct {
	LogProb   float64   // sum of the continuation tokens' log-probabilities
	TokenLogP []float64 // per continuation token
}

// Score returns log p(continuation | prompt) for each pair, running batchSize sequences
// at a time (right-padded; causal attention keeps padding out of the real positions).
func Score(m model.CausalLM, prompts, continuations [][]int, batchSize int) ([]Scored, error) {
	if len(prompts) != len(continuations) {
		return nil, fmt.Errorf("score: %d prompts but %d continuations", len(prompts), len(continuations))
	}
	if batchSize <= 0 {
		batchSize = 16
	}
	info := m.Info()
	for i := range prompts {
		if len(prompts[i]) == 0 || len(continuations[i]) == 0 {
			return nil, fmt.Errorf("score: pair %d has an empty prompt or continuation", i)
		}
		if n := len(prompts[i]) + len(continuations[i]); n > info.MaxPositions {
			return nil, fmt.Errorf("score: pair %d has %d tokens, more than the model's %d positions", i, n, info.MaxPositions)
		}
		for _, id := range append(append([]int(nil), prompts[i]...), continuations[i]...) {
			if id < 0 || id >= info.VocabSize {
				return nil, fmt.Errorf("score: pair %d has token %d outside the vocabulary of %d", i, id, info.VocabSize)
			}
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev := m.Device()
	out := make([]Scored, len(prompts))
	err := torch.NoGrad(func() error {
		for start := 0; start < len(prompts); start += batchSize {
			end := min(start+batchSize, len(prompts))
			T := 0
			for i := start; i < end; i++ {
				T = max(T, len(prompts[i])+len(continuations[i]))
			}
			n := end - start
			ids := make([]int64, n*T)
			targets := make([]int64, n*T)
			for r := 0; r < n; r++ {
				seq := append(append([]int(nil), prompts[start+r]...), continuations[start+r]...)
				for t := 0; t < T; t++ {
					targets[r*T+t] = -100
					if t < len(seq) {
						ids[r*T+t] = int64(seq[t])
					}
					// position t predicts token t+1; score only continuation tokens
					if t+1 < len(seq) && t+1 >= len(prompts[start+r]) {
						targets[r*T+t] = int64(seq[t+1])
					}
				}
			}
			s := torch.NewScope()
			shape := []int64{int64(n), int64(T)}
			logits := m.Forward(s, s.Int64s(ids, shape, dev))
			logits = s.To(s.Reshape(logits, int64(n*T), -1), torch.Float32, dev)
			nll := s.CrossEntropy(logits, s.Int64s(targets, []int64{int64(n * T)}, dev), -100, torch.ReduceNone)
			v, err := s.To(nll, torch.Float64, torch.CPU).Float64s()
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return fmt.Errorf("score: %w", err)
			}
			for r := 0; r < n; r++ {
				sc := &out[start+r]
				for t := 0; t < T; t++ {
					if targets[r*T+t] != -100 {
						sc.TokenLogP = append(sc.TokenLogP, -v[r*T+t])
						sc.LogProb -= v[r*T+t]
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Classification is the answer of Classify for one prompt.
type Classification struct {
	Label    int       // index of the most likely label
	LogProbs []float64 // log p(label | prompt) for every label
}

// Classify answers each prompt with one of the labels (token sequences), so the answer is
// always a valid label: every label is scored as a continuation and the most likely wins.
//
// The labels are arranged as a prefix tree and packed after the prompt in one row (each
// tree node sees the prompt and its own ancestors, at the position it would have in an
// unpacked sequence), so a prompt costs one forward pass over its tokens plus the tree's,
// not one pass per label. batchSize is the number of prompts per pass.
func Classify(m model.CausalLM, prompts [][]int, labels [][]int, batchSize int) ([]Classification, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("classify: no labels")
	}
	if batchSize <= 0 {
		batchSize = 16
	}
	info := m.Info()
	tree, err := newLabelTree(labels, info.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if err := checkClassifyPrompts(prompts, tree.depth, info); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev := m.Device()
	out := make([]Classification, len(prompts))
	N := len(tree.tokens)
	K := int64(N + 1)   // selected positions per row: the prompt's last, then the nodes
	M := len(tree.slot) // (slot, token) pairs read per row
	V := int64(info.VocabSize)
	w := info.SlidingWindow
	flat := make([]int64, M)
	for j := range tree.slot {
		flat[j] = int64(tree.slot[j])*V + int64(tree.target[j])
	}
	err = torch.NoGrad(func() error {
		for start := 0; start < len(prompts); start += batchSize {
			end := min(start+batchSize, len(prompts))
			n := end - start
			P := 0
			for i := start; i < end; i++ {
				P = max(P, len(prompts[i]))
			}
			T := P + N
			ids := make([]int64, n*T)
			pos := make([]int64, n*T)
			mask := make([]bool, n*T*T)
			at := make([]int64, n*int(K))
			for r := 0; r < n; r++ {
				p := prompts[start+r]
				L := len(p)
				row := ids[r*T : (r+1)*T]
				rp := pos[r*T : (r+1)*T]
				rm := mask[r*T*T : (r+1)*T*T]
				// sees: a query at position q may attend a key at position k <= q (the
				// caller guarantees causality), within the sliding window if any.
				sees := func(q, k int) bool { return w <= 0 || k > q-w }
				for t := 0; t < L; t++ {
					row[t], rp[t] = int64(p[t]), int64(t)
					for u := 0; u <= t; u++ {
						rm[t*T+u] = sees(t, u)
					}
				}
				for t := L; t < P; t++ { // padding: sees only itself
					rm[t*T+t] = true
				}
				for k := 0; k < N; k++ {
					t := P + k
					q := L + tree.nodeDepth[k] - 1
					row[t], rp[t] = int64(tree.tokens[k]), int64(q)
					for u := 0; u < L; u++ {
						rm[t*T+u] = sees(q, u)
					}
					for a := k; a >= 0; a = tree.parent[a] {
						rm[t*T+P+a] = sees(q, L+tree.nodeDepth[a]-1)
					}
				}
				ra := at[r*int(K) : (r+1)*int(K)]
				ra[0] = int64(L - 1)
				for k := 0; k < N; k++ {
					ra[k+1] = int64(P + k)
				}
			}
			s := torch.NewScope()
			logits := m.Logits(s, s.Int64s(ids, []int64{int64(n), int64(T)}, dev), s.Int64s(pos, []int64{int64(n), int64(T)}, dev),
				s.Bools(mask, []int64{int64(n), 1, int64(T), int64(T)}, dev), s.Int64s(at, []int64{int64(n), K}, dev))
			logp := s.Reshape(s.LogSoftmax(s.To(logits, torch.Float32, dev), -1), int64(n), K*V)
			idx := s.Expand(s.Int64s(flat, []int64{1, int64(M)}, dev), int64(n), int64(M))
			v, err := s.To(s.Gather(logp, 1, idx), torch.Float64, torch.CPU).Float64s()
			if s.Err() != nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return fmt.Errorf("classify: %w", err)
			}
			for r := 0; r < n; r++ {
				c := Classification{LogProbs: make([]float64, len(labels))}
				for j := 0; j < M; j++ {
					c.LogProbs[tree.label[j]] += v[r*M+j]
				}
				for j := range labels {
					if c.LogProbs[j] > c.LogProbs[c.Label] {
						c.Label = j
					}
				}
				out[start+r] = c
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkClassifyPrompts rejects an empty prompt, one that with the longest label (depth
// tokens) outgrows the model, or a token outside the vocabulary.
func checkClassifyPrompts(prompts [][]int, depth int, info model.Info) error {
	for i, p := range prompts {
		if len(p) == 0 {
			return fmt.Errorf("classify: prompt %d is empty", i)
		}
		if n := len(p) + depth; n > info.MaxPositions {
			return fmt.Errorf("classify: prompt %d with its longest label has %d tokens, more than the model's %d positions", i, n, info.MaxPositions)
		}
		for _, id := range p {
			if id < 0 || id >= info.VocabSize {
				return fmt.Errorf("classify: prompt %d has token %d outside the vocabulary of %d", i, id, info.VocabSize)
			}
		}
	}
	return nil
}

// labelTree is the prefix tree of a label set, flattened for packed scoring. Node k holds
// the last token of a proper prefix of some label; its output predicts that label's next
// token. Slot 0 is the prompt's last position, slot k+1 is node k.
type labelTree struct {
	tokens    []int // node k's token
	parent    []int // node k's parent node (-1: it hangs off the prompt)
	nodeDepth []int // prefix length node k ends
	depth     int   // the longest label, in tokens
	// One entry per label token: the slot whose output predicts it, the token, the label.
	slot, target, label []int
}

func newLabelTree(labels [][]int, vocab int) (*labelTree, error) {
	t := &labelTree{}
	children := map[[2]int]int{} // (parent node, token) -> node
	for j, l := range labels {
		if len(l) == 0 {
			return nil, fmt.Errorf("label %d is empty", j)
		}
		t.depth = max(t.depth, len(l))
		node := -1
		for k, id := range l {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("label %d has token %d outside the vocabulary of %d", j, id, vocab)
			}
			t.slot = append(t.slot, node+1)
			t.target = append(t.target, id)
			t.label = append(t.label, j)
			if k == len(l)-1 {
				break
			}
			key := [2]int{node, id}
			next, ok := children[key]
			if !ok {
				next = len(t.tokens)
				children[key] = next
				t.tokens = append(t.tokens, id)
				t.parent = append(t.parent, node)
				t.nodeDepth = append(t.nodeDepth, k+1)
			}
			node = next
		}
	}
	return t, nil
}
