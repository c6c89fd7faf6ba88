package coldstart

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// EvalSet is the frozen evaluation set: drawn from the pool before any training and
// never trained on, with what it is made of.
type EvalSet struct {
	Examples []task.Example `json:"-"`
	N        int            `json:"n"` // len(Examples), kept where Examples are not (the lineage)
	// Make counts its examples by part: "positive:<label or type>", "boundary:<label>"
	// (a classification example close to one of another label), "negative" (an
	// extraction input with no entity).
	Make map[string]int `json:"make"`
	// NearDuplicates is how many training examples were left out of the pool for being
	// near-duplicates of an evaluation example (TF-IDF cosine at least NearDuplicate).
	NearDuplicates int `json:"near_duplicates_removed"`
}

// NearDuplicate is the TF-IDF cosine similarity from which a training input counts as a
// copy of an evaluation input (a word or two changed in a sentence).
const NearDuplicate = 0.9

// boundaryShare is the part of each label's evaluation examples that are boundary cases.
const boundaryShare = 0.25

// negativeShare is the part of an extraction evaluation set with no entity (when the pool
// has such inputs).
const negativeShare = 0.15

// FreezeEval draws n evaluation examples from the pool and returns them with the rest of
// the pool (the training data), near-duplicates of the evaluation inputs removed from it.
// Classification: every label in equal share where the pool allows, a quarter of each
// label's share boundary cases (the examples whose nearest neighbour of another label is
// closest); extraction: every entity type present, about 15 % inputs with no entity;
// generation: a random draw.
func FreezeEval(t task.Type, labels []string, pool []task.Example, n int, seed uint64) (*EvalSet, []task.Example, error) {
	if n <= 0 {
		return nil, nil, fmt.Errorf("coldstart: evaluation set size %d", n)
	}
	if len(pool) < 2*n {
		n = len(pool) / 3 // at least two thirds of a small pool stays for training
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("coldstart: %d examples are too few to hold an evaluation set back", len(pool))
	}
	r := rand.New(rand.NewPCG(seed, 0xe7a1))
	es := &EvalSet{Make: map[string]int{}}
	picked := map[int]bool{}
	take := func(i int, part string) {
		if !picked[i] {
			picked[i] = true
			es.Make[part]++
		}
	}
	texts := make([]string, len(pool))
	for i, ex := range pool {
		texts[i] = ex.Text
	}
	ix := text.NewIndex(texts)
	switch t {
	case task.Classification:
		by := map[string][]int{}
		for _, i := range r.Perm(len(pool)) {
			by[pool[i].Label] = append(by[pool[i].Label], i)
		}
		quota := max(1, n/max(1, len(labels)))
		for _, l := range labels {
			idx := by[l]
			if len(idx) == 0 {
				continue
			}
			want := min(quota, len(idx)/2+1) // half of a rare label stays for training
			// Boundary cases: of a sample of the label's examples, those closest to an
			// example of another label.
			nb := int(float64(want)*boundaryShare + 0.5)
			cand := idx[:min(len(idx), 8*max(1, nb))]
			type near struct {
				i   int
				sim float64
			}
			var close []near
			for _, i := range cand {
				hs := ix.Nearest(pool[i].Text, 1, func(j int) bool { return pool[j].Label == l })
				if len(hs) > 0 {
					close = append(close, near{i, hs[0].Sim})
				}
			}
			sort.SliceStable(close, func(a, b int) bool { return close[a].sim > close[b].sim })
			for _, c := range close[:min(nb, len(close))] {
				take(c.i, "boundary:"+l)
			}
			for _, i := range idx {
				if es.count(l) >= want {
					break
				}
				take(i, "positive:"+l)
			}
		}
	case task.Extraction:
		var negatives []int
		byType := map[string][]int{}
		var types []string
		for _, i := range r.Perm(len(pool)) {
			if len(pool[i].Entities) == 0 {
				negatives = append(negatives, i)
				continue
			}
			tt := pool[i].Entities[r.IntN(len(pool[i].Entities))].Type
			if _, ok := byType[tt]; !ok {
				types = append(types, tt)
			}
			byType[tt] = append(byType[tt], i)
		}
		slices.Sort(types)
		nn := min(len(negatives)/2, int(float64(n)*negativeShare+0.5))
		for _, i := range negatives[:nn] {
			take(i, "negative")
		}
		quota := max(1, (n-nn)/max(1, len(types)))
		for _, tt := range types {
			k := 0
			for _, i := range byType[tt] {
				if k >= min(quota, len(byType[tt])/2+1) {
					break
				}
				if !picked[i] {
					take(i, "positive:"+tt)
					k++
				}
			}
		}
	default:
		for _, i := range r.Perm(len(pool))[:n] {
			take(i, "random")
		}
	}
	// The pool's remaining examples, in pool order, without near-duplicates of any
	// evaluation input.
	var idx []int
	for i := range pool {
		if picked[i] {
			idx = append(idx, i)
			es.Examples = append(es.Examples, pool[i])
		}
	}
	es.N = len(es.Examples)
	near := map[int]bool{}
	for _, i := range idx {
		for _, h := range ix.Nearest(pool[i].Text, 8, func(j int) bool { return picked[j] }) {
			if h.Sim >= NearDuplicate {
				near[h.I] = true
			}
		}
	}
	var train []task.Example
	for i, ex := range pool {
		if picked[i] {
			continue
		}
		if near[i] {
			es.NearDuplicates++
			continue
		}
		train = append(train, ex)
	}
	return es, train, nil
}

// count is how many evaluation examples a label has so far.
func (es *EvalSet) count(label string) int {
	return es.Make["positive:"+label] + es.Make["boundary:"+label]
}

// Parts says in a line what the set is made of: its examples counted by part (positive,
// boundary, negative), over every label.
func (es *EvalSet) Parts() string {
	by := map[string]int{}
	for k, n := range es.Make {
		part, _, _ := strings.Cut(k, ":")
		by[part] += n
	}
	var out []string
	for _, k := range sortedKeys(by) {
		out = append(out, fmt.Sprintf("%s %d", k, by[k]))
	}
	return strings.Join(out, ", ")
}
