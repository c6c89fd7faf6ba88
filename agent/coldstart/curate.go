package coldstart

import (
	"math/rand/v2"
	"sort"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// Curation is what the data side (D) of a cold-start pipeline did to the training pool,
// for the report.
type Curation struct {
	In        int            `json:"in"`
	Out       int            `json:"out"`
	Capped    map[string]int `json:"capped,omitempty"`    // label -> examples left out by the balance cap
	TooLong   int            `json:"too_long,omitempty"`  // inputs far longer than the evaluation set's
	Hard      int            `json:"hard,omitempty"`      // examples the base model got wrong, kept first
	Negatives int            `json:"negatives,omitempty"` // hard negatives paired with them
	PerLabel  map[string]int `json:"per_label,omitempty"` // what is left, per label (classification)
	Truncated bool           `json:"truncated,omitempty"` // the size asked for cut the pool
}

// maxLabelRatio is how many times another label's count a label may have in training
// data (the paper's curation rule: no label above 3x another).
const maxLabelRatio = 3

// lengthSlack is how much longer than the evaluation set's longest input a training
// input may be before it is left out as unlike the task's inputs.
const lengthSlack = 1.5

// Curate draws n training examples (0: as many as the rules leave) from the pool:
// inputs much longer than any evaluation input left out; for classification no label
// above maxLabelRatio times the rarest one; the hard examples (ids the base model got
// wrong, in hard) first, each with a hard negative (the nearest example of another
// label or answer) beside it; the rest drawn with seed, balanced across labels.
func Curate(t task.Type, pool, eval []task.Example, hard map[string]bool, n int, seed uint64) ([]task.Example, Curation) {
	cu := Curation{In: len(pool), Capped: map[string]int{}}
	longest := 0
	for _, ex := range eval {
		longest = max(longest, utf8.RuneCountInString(ex.Text))
	}
	var kept []task.Example
	for _, ex := range pool {
		if longest > 0 && float64(utf8.RuneCountInString(ex.Text)) > lengthSlack*float64(longest) {
			cu.TooLong++
			continue
		}
		kept = append(kept, ex)
	}
	r := rand.New(rand.NewPCG(seed, 0xc5a7))
	r.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
	if t == task.Classification {
		kept = capLabels(kept, &cu)
	}
	// Hard examples first, each followed by its hard negative.
	var out []task.Example
	var role []int // per example of out: 1 hard, 2 its hard negative, 0 other
	used := map[int]bool{}
	texts := make([]string, len(kept))
	for i, ex := range kept {
		texts[i] = ex.Text
	}
	var ix *text.Index
	for i, ex := range kept {
		if !hard[ex.ID] || used[i] {
			continue
		}
		if ix == nil {
			ix = text.NewIndex(texts)
		}
		used[i] = true
		out, role = append(out, ex), append(role, 1)
		for _, h := range ix.Nearest(ex.Text, 10, func(j int) bool { return used[j] || sameAnswer(kept[j], ex) }) {
			used[h.I] = true
			out, role = append(out, kept[h.I]), append(role, 2)
			break
		}
	}
	// The rest, round-robin over labels so that any size is balanced.
	var rest []task.Example
	for i, ex := range kept {
		if !used[i] {
			rest = append(rest, ex)
		}
	}
	if t == task.Classification {
		rest = roundRobin(rest)
	}
	out = append(out, rest...)
	if n > 0 && n < len(out) {
		out = out[:n]
		cu.Truncated = true
	}
	cu.Out = len(out)
	for _, r := range role[:min(len(role), len(out))] {
		switch r {
		case 1:
			cu.Hard++
		case 2:
			cu.Negatives++
		}
	}
	if t == task.Classification {
		cu.PerLabel = map[string]int{}
		for _, ex := range out {
			cu.PerLabel[ex.Label]++
		}
	}
	if len(cu.Capped) == 0 {
		cu.Capped = nil
	}
	return out, cu
}

// capLabels keeps at most maxLabelRatio times the rarest label's count of every label.
func capLabels(exs []task.Example, cu *Curation) []task.Example {
	count := map[string]int{}
	for _, ex := range exs {
		count[ex.Label]++
	}
	if len(count) < 2 {
		return exs
	}
	rarest := len(exs)
	for _, c := range count {
		rarest = min(rarest, c)
	}
	limit := maxLabelRatio * rarest
	seen := map[string]int{}
	var out []task.Example
	for _, ex := range exs {
		if seen[ex.Label] >= limit {
			cu.Capped[ex.Label]++
			continue
		}
		seen[ex.Label]++
		out = append(out, ex)
	}
	return out
}

// roundRobin orders examples one per label in turn (labels in sorted order), keeping
// each label's own order, so that any prefix is as balanced as the data allow.
func roundRobin(exs []task.Example) []task.Example {
	by := map[string][]task.Example{}
	for _, ex := range exs {
		by[ex.Label] = append(by[ex.Label], ex)
	}
	labels := make([]string, 0, len(by))
	for l := range by {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	out := make([]task.Example, 0, len(exs))
	for k := 0; len(out) < len(exs); k++ {
		for _, l := range labels {
			if k < len(by[l]) {
				out = append(out, by[l][k])
			}
		}
	}
	return out
}
