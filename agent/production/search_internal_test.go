package production

import (
	"math"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/search"
	"github.com/pioneer-ai/pioneer/agent/task"
)

// A smooth reward landscape over the production pipeline space with its optimum away
// from the root: 8 similar examples, gold failures twice, R replayed, one epoch more,
// the base learning rate.
func landscape(p pipeline) float64 {
	return -0.01*math.Abs(float64(p.Similar-8)) - 0.02*math.Abs(float64(p.GoldX-2)) - 0.01*math.Abs(float64(p.Epochs-4)) -
		0.02*math.Abs(math.Log2(p.LR/5e-3)) + map[bool]float64{true: 0.03}[p.ReplayR]
}

// TestSearchClimbsThePipelineSpace: the graph search over the production moves finds
// pipelines well above the root within a production-sized budget.
func TestSearchClimbsThePipelineSpace(t *testing.T) {
	root := pipeline{Similar: 2, GoldX: 1, Epochs: 3, LR: 5e-3, Rank: 16}
	nodes, err := search.MCTS(root, search.Options{Budget: 12, Seed: 1, PreferWhenBroke: preferWhenBroke, PreferWhenSound: preferWhenSound},
		func(n *search.Node[pipeline]) (float64, bool, error) { return landscape(n.P), false, nil })
	if err != nil {
		t.Fatal(err)
	}
	best := nodes[0]
	for _, n := range nodes {
		if n.Reward > best.Reward {
			best = n
		}
	}
	if len(nodes) != 12 || best.Reward < nodes[0].Reward+0.06 {
		t.Fatalf("%d nodes; best %s %+v reward %.3f, root %.3f", len(nodes), best.Name, best.P, best.Reward, nodes[0].Reward)
	}
	t.Logf("best %s %s reward %.3f (root %.3f)", best.Name, best.P, best.Reward, nodes[0].Reward)
}

// TestPipelineSpaceIsBounded: the moves stay inside the space, so a search with budget
// enough evaluates all of it once.
func TestPipelineSpaceIsBounded(t *testing.T) {
	root := pipeline{Similar: 16, GoldX: 3, ReplayR: true, Epochs: 1, LR: 1e-3}
	n := 0
	nodes, err := search.MCTS(root, search.Options{Budget: 1000, Seed: 2, PreferWhenBroke: preferWhenBroke, PreferWhenSound: preferWhenSound},
		func(*search.Node[pipeline]) (float64, bool, error) { n++; return -float64(n), n%2 == 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	// Similar 16, 8, 4, 2, 1, 0 (halving; doubling from 1 gives 2); GoldX 1-3; replay
	// or not; epochs 1-4; lr base/4..base*2 in powers of two: 6*3*2*4*4.
	if want := 6 * 3 * 2 * 4 * 4; len(nodes) != want {
		t.Fatalf("%d pipelines evaluated, want the whole space of %d", len(nodes), want)
	}
}

// TestTrainingFingerprint: two plans train the same thing when their curricula and
// recipes agree but for the seed and name; another item, gold weighting or rate differs.
func TestTrainingFingerprint(t *testing.T) {
	cur := &Curriculum{Items: []Item{{Example: task.Example{ID: "a", Text: "x", Label: "l"}, Source: SrcGold}}}
	r := finetune.Recipe{Name: "A", Epochs: 4, LR: 5e-3, Seed: 2}
	same := r
	same.Name, same.Seed = "A", 3
	fp := trainingFingerprint(cur, plan{r, 1})
	if trainingFingerprint(cur, plan{same, 1}) != fp {
		t.Fatal("a plan differing by its seed alone has another fingerprint")
	}
	faster := r
	faster.LR = 3e-3
	more := &Curriculum{Items: append(append([]Item(nil), cur.Items...), Item{Example: task.Example{ID: "b", Text: "y", Label: "l"}, Source: SrcSimilar})}
	for name, other := range map[string]string{
		"gold x2": trainingFingerprint(cur, plan{r, 2}), "lr": trainingFingerprint(cur, plan{faster, 1}), "an item more": trainingFingerprint(more, plan{r, 1}),
	} {
		if other == fp {
			t.Errorf("%s: the same fingerprint", name)
		}
	}
}
