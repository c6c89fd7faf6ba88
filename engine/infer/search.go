package infer

import (
	"container/heap"
	"fmt"
	"runtime"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Best is the answer of ClassifyBest for one prompt.
type Best struct {
	Label   int     // index of the most likely label
	LogProb float64 // log p(label | prompt)
	// Expanded is how many label-tree nodes were run through the model to find it (the
	// prompt's own pass aside).
	Expanded int
}

// ClassifyBest answers each prompt with its most likely label, as Classify does, without
// scoring every label: it searches the labels' prefix tree best first. A prefix's
// log-probability bounds that of every label it starts (log-probabilities only fall as
// tokens are added), so once the most probable entry left is a whole label, no other can
// beat it, and the answer is exact. The prompt runs once, into a key/value cache; each
// step then runs one tree node per prompt (the best open one) against the prompt and its
// ancestors, so a confident model needs about as many steps as its answer has tokens
// instead of a pass over the whole tree. batchSize prompts run side by side.
func ClassifyBest(m model.CausalLM, prompts [][]int, labels [][]int, batchSize int) ([]Best, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("classify: no labels")
	}
	if batchSize <= 0 {
		batchSize = 16
	}
	info := m.Info()
	if info.SlidingWindow > 0 {
		return nil, fmt.Errorf("classify: best-first search does not handle sliding-window attention; use Classify")
	}
	tr, err := newTrie(labels, info.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("classify: prompt %d is empty", i)
		}
		if n := len(p) + tr.depth; n > info.MaxPositions {
			return nil, fmt.Errorf("classify: prompt %d with its longest label has %d tokens, more than the model's %d positions", i, n, info.MaxPositions)
		}
		for _, id := range p {
			if id < 0 || id >= info.VocabSize {
				return nil, fmt.Errorf("classify: prompt %d has token %d outside the vocabulary of %d", i, id, info.VocabSize)
			}
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]Best, 0, len(prompts))
	err = torch.NoGrad(func() error {
		for start := 0; start < len(prompts); start += batchSize {
			res, err := searchBatch(m, prompts[start:min(start+batchSize, len(prompts))], tr)
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

// searchBatch runs the search for a few prompts side by side.
func searchBatch(m model.CausalLM, prompts [][]int, tr *trie) ([]Best, error) {
	B := len(prompts)
	dev := m.Device()
	V := m.Info().VocabSize
	P := 0
	for _, p := range prompts {
		P = max(P, len(p))
	}
	// at most one step per internal node, per row
	steps := 0
	for node := range tr.label {
		if tr.label[node] < 0 && node != 0 {
			steps++
		}
	}
	cache, err := m.NewCache(B, P+steps)
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
	logp := func(s *torch.Scope, last *torch.Tensor) ([]float32, error) {
		v, err := s.To(s.LogSoftmax(s.To(last, torch.Float32, dev), -1), torch.Float32, torch.CPU).Float32s()
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
	next := make([]open, B)
	for S := P; ; S++ {
		// each row's best open entry: a whole label ends its search
		for b := 0; b < B; b++ {
			if done[b] {
				continue
			}
			top, _ := fronts[b].best()
			if l := tr.label[top.node]; l >= 0 {
				out[b].Label, out[b].LogProb, done[b] = l, top.score, true
				remaining--
				continue
			}
			next[b] = heap.Pop(&fronts[b]).(open)
			out[b].Expanded++
		}
		if remaining == 0 {
			return out, nil
		}
		// one node per row at slot S: it sees its prompt and its ancestors' slots
		ids, pos, mask = ids[:B], pos[:B], make([]bool, B*(S+1))
		for b := 0; b < B; b++ {
			row := mask[b*(S+1) : (b+1)*(S+1)]
			row[S] = true
			if done[b] {
				ids[b], pos[b] = 0, 0
				continue
			}
			ids[b], pos[b] = int64(next[b].token), int64(len(prompts[b])+next[b].depth-1)
			copy(row, valid[b])
			for _, a := range next[b].parents {
				row[a] = true
			}
		}
		s := torch.NewScope()
		lp, err := logp(s, m.Step(s, s.Int64s(ids, []int64{int64(B), 1}, dev), s.Int64s(pos, []int64{int64(B), 1}, dev),
			s.Bools(mask, []int64{int64(B), 1, 1, int64(S + 1)}, dev), cache))
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		for b := 0; b < B; b++ {
			if !done[b] {
				push(b, next[b], lp[b*V:(b+1)*V], S)
			}
		}
	}
}
