package production

import (
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// Source says where a curriculum example came from.
type Source string

// The sources.
const (
	SrcGold    Source = "gold_failure"   // an admitted failure with its expected answer
	SrcVariant Source = "robustness"     // a fixable failure as logged (noise kept), expected answer
	SrcSimilar Source = "similar"        // a pool example like a failure, same answer
	SrcMissed  Source = "missed_probe"   // a fresh pool example the deployed model got wrong the pattern's way
	SrcHard    Source = "hard_negative"  // a pool example of the confused-with label
	SrcReplay  Source = "replay"         // the parent's training data, labels in the patterns
	SrcTeacher Source = "teacher"        // written by the teacher endpoint
	SrcTraffic Source = "traffic_replay" // R, the traffic the deployed model gets right
)

// Item is a training example with its provenance.
type Item struct {
	Example task.Example `json:"example"`
	Source  Source       `json:"source"`
	Pattern string       `json:"pattern,omitempty"`
}

// Curriculum is the targeted data of one iteration: its items and the mix they make.
type Curriculum struct {
	Items []Item         `json:"items"`
	Mix   map[Source]int `json:"mix"` // source -> count
}

// mix fractions (docs/DESIGN.md §5): gold failures 40-60 %, hard negatives 25-35 %, replay
// 10-20 %. Gold includes the robustness variants, similar examples and teacher examples.
const (
	hardShare   = 0.30
	replayShare = 0.15
)

// buildCurriculum assembles the targeted data for the confirmed patterns (for
// classification, confusion pairs and format errors): the gold
// failures (cleaned), the logged noisy form of fixable ones, the fresh probes the deployed
// model failed the pattern's way (so a pattern's share grows with its measured error
// rate), similar pool examples with the same answer (similarPer per failure), hard negatives from the confused-with labels and
// replay of the parent's data for the labels involved, sized to the mix above. With
// consolidate, every other admitted training failure (and its logged form) is added too,
// once, without similar examples: the candidate that also replays R is then the naive
// retraining with the traffic less what triage turned away, and the patterns' data on top.
func buildCurriculum(t *task.Task, patterns []*Pattern, gold map[string]Item, variants map[string]Item,
	pool []task.Example, ix *text.Index, usable func(int) bool, parent []task.Example, similarPer int, consolidate bool, seed uint64) *Curriculum {
	c := &Curriculum{Mix: map[Source]int{}}
	used := map[int]bool{}
	add := func(it Item) {
		c.Items = append(c.Items, it)
		c.Mix[it.Source]++
	}
	labels := map[string]bool{}   // labels (or entity types) the patterns involve
	confused := map[string]bool{} // confused-with labels
	taken := map[string]bool{}
	for _, p := range patterns {
		// A failure is trained on only through a confirmed pattern of its own kind of
		// mistake: for classification its confusion pair, not the summary of its label's
		// errors (a label's overall error rate says nothing about whether this
		// particular log line is right).
		if !p.Confirmed || p.Summary {
			continue
		}
		if p.Gold != "" {
			labels[p.Gold] = true
		}
		if p.Predicted != "" && t.HasLabel(p.Predicted) {
			confused[p.Predicted] = true
			labels[p.Predicted] = true
		}
		// The probes that confirmed the pattern and went wrong: labelled examples the
		// deployed model fails this very way, as many as its error rate makes.
		for _, i := range p.Missed {
			if i >= 0 && i < len(pool) && !used[i] && usable(i) {
				used[i] = true
				add(Item{Example: pool[i], Source: SrcMissed, Pattern: p.ID})
			}
		}
		for _, id := range p.Failures {
			if taken[id] {
				continue
			}
			g, ok := gold[id]
			if !ok {
				continue
			}
			taken[id] = true
			g.Pattern = p.ID
			add(g)
			if v, ok := variants[id]; ok {
				v.Pattern = p.ID
				add(v)
			}
			// Similar pool examples with the same answer.
			similar := 0
			for _, h := range ix.Nearest(g.Example.Text, 4*similarPer, func(i int) bool { return used[i] || !usable(i) }) {
				if similar >= similarPer {
					break
				}
				if sameAnswer(t, pool[h.I], g.Example) {
					used[h.I] = true
					similar++
					add(Item{Example: pool[h.I], Source: SrcSimilar, Pattern: p.ID + "|" + g.Example.ID})
				}
			}
		}
	}
	if consolidate {
		for _, id := range slices.Sorted(maps.Keys(gold)) {
			if taken[id] {
				continue
			}
			add(gold[id])
			if v, ok := variants[id]; ok {
				add(v)
			}
		}
	}
	goldSide := len(c.Items)
	if goldSide == 0 {
		return c
	}
	// goldSide is about 55 % of the whole: size the rest from it.
	total := float64(goldSide) / (1 - hardShare - replayShare)
	wantHard, wantReplay := int(total*hardShare+0.5), int(total*replayShare+0.5)
	// Hard negatives: pool examples of the confused-with answers nearest to the failures.
	var hard []Item
	for _, it := range c.Items {
		if it.Source != SrcGold {
			continue
		}
		for _, h := range ix.Nearest(it.Example.Text, 20, func(i int) bool { return used[i] || !usable(i) }) {
			ex := pool[h.I]
			if isHardNegative(t, ex, it.Example, confused) {
				used[h.I] = true
				hard = append(hard, Item{Example: ex, Source: SrcHard, Pattern: it.Pattern})
				break
			}
		}
	}
	r := rand.New(rand.NewPCG(seed, 0xc0ffee))
	for i := 0; len(hard) < wantHard && i < len(pool); i++ { // top up with random ones of those labels
		j := r.IntN(len(pool))
		if !used[j] && usable(j) && isHardNegative(t, pool[j], task.Example{}, confused) {
			used[j] = true
			hard = append(hard, Item{Example: pool[j], Source: SrcHard})
		}
	}
	if len(hard) > wantHard {
		hard = hard[:wantHard]
	}
	for _, it := range hard {
		add(it)
	}
	// Replay: the parent's examples of the labels involved, then any.
	perm := r.Perm(len(parent))
	sort.SliceStable(perm, func(a, b int) bool {
		return involves(t, parent[perm[a]], labels) && !involves(t, parent[perm[b]], labels)
	})
	for i := 0; i < wantReplay && i < len(perm); i++ {
		add(Item{Example: parent[perm[i]], Source: SrcReplay})
	}
	return c
}

// keySet is an example's keys (task.Task.Keys: its label, or its entity types), sorted
// and joined.
func keySet(t *task.Task, ex task.Example) string {
	ks := slices.Clone(t.Keys(ex))
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// sameAnswer: an example with the same keys as another: the same label, or the same
// entity types present (never for free-form answers, which have none).
func sameAnswer(t *task.Task, a, b task.Example) bool {
	return len(t.Keys(a)) > 0 && keySet(t, a) == keySet(t, b)
}

// isHardNegative: an example whose keys differ from the failure's and, when the model
// confuses the failure's label with others, are one of those (classification: an
// example of a confused-with label; extraction: a sentence with another set of types).
func isHardNegative(t *task.Task, ex, failure task.Example, confused map[string]bool) bool {
	if keySet(t, ex) == keySet(t, failure) {
		return false
	}
	if len(confused) == 0 { // nothing confused: any other answer, where answers are not chosen among labels
		return !t.Constrained()
	}
	for _, k := range t.Keys(ex) {
		if confused[k] {
			return true
		}
	}
	return false
}

// involves: an example with a key among labels.
func involves(t *task.Task, ex task.Example, labels map[string]bool) bool {
	for _, k := range t.Keys(ex) {
		if labels[k] {
			return true
		}
	}
	return false
}
