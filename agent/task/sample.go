package task

import (
	"math/rand/v2"
	"sort"
)

// Sample draws at most n examples with a seeded shuffle; for classification the draw is
// balanced: labels take turns, so no label has more than one example more than another
// unless it runs out.
func (t *Task) Sample(exs []Example, n int, seed uint64) []Example {
	if n <= 0 || n >= len(exs) {
		return exs
	}
	r := rand.New(rand.NewPCG(seed, 0x5a3b1e))
	idx := r.Perm(len(exs))
	if !t.kind.balanced() {
		out := make([]Example, n)
		for i := range out {
			out[i] = exs[idx[i]]
		}
		return out
	}
	by := map[string][]int{}
	var order []string
	for _, i := range idx {
		l := exs[i].Label
		if _, ok := by[l]; !ok {
			order = append(order, l)
		}
		by[l] = append(by[l], i)
	}
	var picked []int
	for round := 0; len(picked) < n; round++ {
		added := false
		for _, l := range order {
			if round < len(by[l]) && len(picked) < n {
				picked = append(picked, by[l][round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	sort.Ints(picked) // keep the split's order; the trainer shuffles
	out := make([]Example, len(picked))
	for i, j := range picked {
		out[i] = exs[j]
	}
	return out
}
