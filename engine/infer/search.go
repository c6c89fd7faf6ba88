package infer

import (
	"container/heap"
	"fmt"
	"runtime"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// cacheSlack sizes ClassifyBest's cache: the prompt, then cacheSlack slots per prefix of
// the tree (and one step's width).
var cacheSlack = 2

// DefaultSearchWidth is how many open prefixes per prompt a ClassifyBest step runs at
// most. Beyond the best one, a step takes only prefixes at least e^-searchMargin (5 %) as
// likely as it: a confident model then runs one node per step (few nodes in all), an
// unsure one many at once (fewer steps). Either way the answer is the same; the margin
// only trades steps against nodes run.
const DefaultSearchWidth = 16

// searchMargin is ln(20).
const searchMargin = 2.995732273553991

// Best is the answer of ClassifyBest for one prompt.
type Best struct {
	Label   int     // index of the most likely label
	LogProb float64 // log p(label | prompt)
	// Expanded is how many label-tree nodes were run through the model to find it (the
	// prompt's own pass aside); -1 when the search ran out of cache and every label was
	// scored instead.
	Expanded int
}

// ClassifyBest answers each prompt with its most likely label, as Classify does, without
// scoring every label: it searches the labels' prefix tree best first. A prefix's
// log-probability bounds that of every label it starts (log-probabilities only fall as
// tokens are added), so once the most probable entry left is a whole label, no other can
// beat it, and the answer is exact. The prompt runs once, into a key/value cache; each
// step then runs one tree node per prompt (the best open one) against the prompt and its
// ancestors, so a confident model needs about as many steps as its answer has tokens
// instead of a pass over the whole tree. batchSize prompts run side by side; each step
// runs up to width of a prompt's best open prefixes at once (0: DefaultSearchWidth) when
// they are close in probability, so that an unsure model needs fewer, larger steps.
func ClassifyBest(m model.CausalLM, prompts [][]int, labels [][]int, batchSize, width int) ([]Best, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("classify: no labels")
	}
	if batchSize <= 0 {
		batchSize = 16
	}
	if width <= 0 {
		width = DefaultSearchWidth
	}
	info := m.Info()
	if info.SlidingWindow > 0 {
		return nil, fmt.Errorf("classify: best-first search does not handle sliding-window attention; use Classify")
	}
	tr, err := newTrie(labels, info.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if err := checkClassifyPrompts(prompts, tr.depth, info); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]Best, 0, len(prompts))
	err = torch.NoGrad(func() error {
		for start := 0; start < len(prompts); start += batchSize {
			res, err := searchBatch(m, prompts[start:min(start+batchSize, len(prompts))], labels, tr, width)
			if err != nil {
				return err
			}
			out = append(out, res...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// trie is a label set's prefix tree. Node 0 is the root (the empty prefix); a node whose
// prefix is a whole label has label >= 0. A label that is a prefix of another is scored
// as Classify scores it, by its own tokens alone, and so always beats the longer label.
type trie struct {
	children [][]edge
	label    []int
	depth    int // the longest label, in tokens
}

type edge struct{ token, node int }

func newTrie(labels [][]int, vocab int) (*trie, error) {
	t := &trie{children: [][]edge{nil}, label: []int{-1}}
	for j, l := range labels {
		if len(l) == 0 {
			return nil, fmt.Errorf("label %d is empty", j)
		}
		t.depth = max(t.depth, len(l))
		node := 0
		for _, id := range l {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("label %d has token %d outside the vocabulary of %d", j, id, vocab)
			}
			next := -1
			for _, e := range t.children[node] {
				if e.token == id {
					next = e.node
				}
			}
			if next < 0 {
				next = len(t.label)
				t.children = append(t.children, nil)
				t.label = append(t.label, -1)
				t.children[node] = append(t.children[node], edge{id, next})
			}
			node = next
		}
		if t.label[node] >= 0 {
			return nil, fmt.Errorf("labels %d and %d have the same tokens", t.label[node], j)
		}
		t.label[node] = j
	}
	return t, nil
}

// open is a frontier entry: a tree node whose prefix has log-probability score; slot is
// where its parent's token sits in the cache (-1: the parent is the root), and parents
// lists the cache slots of its ancestors' tokens.
type open struct {
	score   float64
	node    int
	token   int
	depth   int   // tokens in the prefix, this node's included
	parents []int // cache slots of the tokens before this one (the prompt excluded)
}

type frontier []open

func (f frontier) Len() int           { return len(f) }
func (f frontier) Less(i, j int) bool { return f[i].score > f[j].score }
func (f frontier) Swap(i, j int)      { f[i], f[j] = f[j], f[i] }
func (f *frontier) Push(x any)        { *f = append(*f, x.(open)) }
func (f *frontier) Pop() any          { o := (*f)[len(*f)-1]; *f = (*f)[:len(*f)-1]; return o }
func (f frontier) best() (open, bool) { return f[0], len(f) > 0 }

// searchBatch runs the search for a few prompts side by side, each step running up to
// width of every row's best open nodes.
func searchBatch(m model.CausalLM, prompts [][]int, labels [][]int, tr *trie, width int) ([]Best, error) {
	B := len(prompts)
	dev := m.Device()
	V := m.Info().VocabSize
	P := 0
	for _, p := range prompts {
		P = max(P, len(p))
	}
	internal := 0
	for node := range tr.label {
		if tr.label[node] < 0 && node != 0 {
			internal++
		}
	}
	// Every step adds width slots per row; a row that needs more than the cache holds is
	// answered by Classify instead (exactly the same answer, at its cost).
	capacity := P + cacheSlack*internal + width
	cache, err := m.NewCache(B, capacity)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	valid := make([][]bool, B) // cache slots holding a prompt's real tokens
	ids := make([]int64, B*P)
	pos := make([]int64, B*P)
	mask := make([]bool, B*P*P)
	for b, p := range prompts {
		valid[b] = make([]bool, P)
		pad := P - len(p)
		for j := 0; j < P; j++ {
			if j >= pad {
				ids[b*P+j], pos[b*P+j], valid[b][j] = int64(p[j-pad]), int64(j-pad), true
			}
		}
		for i := 0; i < P; i++ {
			for j := 0; j <= i; j++ {
				mask[(b*P+i)*P+j] = valid[b][j] || i == j
			}
		}
	}
	logp := func(s *torch.Scope, logits *torch.Tensor) ([]float32, error) {
		v, err := s.To(s.LogSoftmax(s.To(logits, torch.Float32, dev), -1), torch.Float32, torch.CPU).Float32s()
		if s.Err() != nil {
			err = s.Err()
		}
		return v, err
	}
	s := torch.NewScope()
	lp, err := logp(s, m.Step(s, s.Int64s(ids, []int64{int64(B), int64(P)}, dev), s.Int64s(pos, []int64{int64(B), int64(P)}, dev),
		s.Bools(mask, []int64{int64(B), 1, int64(P), int64(P)}, dev), cache))
	s.Close()
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	out := make([]Best, B)
	fronts := make([]frontier, B)
	done := make([]bool, B)
	push := func(b int, parent open, row []float32, slot int) {
		var parents []int
		if slot >= 0 {
			parents = append(append(parents, parent.parents...), slot)
		}
		for _, e := range tr.children[parent.node] {
			heap.Push(&fronts[b], open{score: parent.score + float64(row[e.token]), node: e.node, token: e.token, depth: parent.depth + 1, parents: parents})
		}
	}
	for b := range prompts {
		push(b, open{node: 0}, lp[b*V:(b+1)*V], -1)
	}
	remaining := B
	next := make([][]open, B)
	for S := P; ; {
		// each row's best open entries: a whole label on top ends its search; otherwise
		// up to width prefixes, taken while no whole label outranks them
		T := 0
		for b := 0; b < B; b++ {
			next[b] = next[b][:0]
			if done[b] {
				continue
			}
			if top, _ := fronts[b].best(); tr.label[top.node] >= 0 {
				out[b].Label, out[b].LogProb, done[b] = tr.label[top.node], top.score, true
				remaining--
				continue
			}
			for len(next[b]) < width && len(fronts[b]) > 0 {
				top, _ := fronts[b].best()
				if tr.label[top.node] >= 0 || (len(next[b]) > 0 && top.score < next[b][0].score-searchMargin) {
					break
				}
				next[b] = append(next[b], heap.Pop(&fronts[b]).(open))
			}
			out[b].Expanded += len(next[b])
			T = max(T, len(next[b]))
		}
		if remaining == 0 {
			return out, nil
		}
		if S+T > capacity {
			return finishPacked(m, prompts, labels, out, done)
		}
		// row b's k-th node at slot S+k: it sees its prompt, its ancestors' slots, itself
		W := S + T
		ids, pos, mask = make([]int64, B*T), make([]int64, B*T), make([]bool, B*T*W)
		for b := 0; b < B; b++ {
			for k := 0; k < T; k++ {
				row := mask[(b*T+k)*W : (b*T+k+1)*W]
				row[S+k] = true
				if k >= len(next[b]) {
					continue // padding: sees itself, is never seen
				}
				o := next[b][k]
				ids[b*T+k], pos[b*T+k] = int64(o.token), int64(len(prompts[b])+o.depth-1)
				copy(row, valid[b])
				for _, a := range o.parents {
					row[a] = true
				}
			}
		}
		s := torch.NewScope()
		lp, err := logp(s, m.StepAll(s, s.Int64s(ids, []int64{int64(B), int64(T)}, dev), s.Int64s(pos, []int64{int64(B), int64(T)}, dev),
			s.Bools(mask, []int64{int64(B), 1, int64(T), int64(W)}, dev), cache))
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		for b := 0; b < B; b++ {
			for k, o := range next[b] {
				push(b, o, lp[(b*T+k)*V:(b*T+k+1)*V], S+k)
			}
		}
		S = W
	}
}

// finishPacked answers the rows not done by scoring every label.
func finishPacked(m model.CausalLM, prompts, labels [][]int, out []Best, done []bool) ([]Best, error) {
	var rest [][]int
	var rows []int
	for b, d := range done {
		if !d {
			rest, rows = append(rest, prompts[b]), append(rows, b)
		}
	}
	cls, err := Classify(m, rest, labels, len(rest))
	if err != nil {
		return nil, err
	}
	for i, b := range rows {
		out[b].Label, out[b].LogProb = cls[i].Label, cls[i].LogProbs[cls[i].Label]
		out[b].Expanded = -1 // the whole tree
	}
	return out, nil
}
