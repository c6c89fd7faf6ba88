package production

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// Search strategies for the candidate pipelines (DESIGN §5).
const (
	// SearchGreedy runs iterations of at least two candidates each and promotes the
	// best passing candidate of the first iteration that has one.
	SearchGreedy = "greedy"
	// SearchMCTS is a Monte-Carlo search over the graph of pipelines: each round
	// walks from the root recipe by UCT to a pipeline with an untried change, trains
	// and gates that change, and backs its reward up the path. Pipelines reached by
	// two paths are one node. The best passing candidate of the whole budget wins.
	SearchMCTS = "mcts"
)

// pipeline is one point of the production search space: how the curriculum is built
// (data) and how the candidate is trained (hyperparameters); the strategy, LoRA or
// every weight, is the deployment's.
type pipeline struct {
	Similar int     `json:"similar"`  // similar pool examples per gold failure
	GoldX   int     `json:"gold_x"`   // copies of each gold failure
	ReplayR bool    `json:"replay_r"` // replay R, the traffic the deployed model got right
	Epochs  int     `json:"epochs"`
	LR      float64 `json:"lr"`
	Rank    int     `json:"rank,omitempty"` // LoRA rank; 0 when every weight trains
}

func (p pipeline) key() string {
	return fmt.Sprintf("s%d g%d r%t e%d lr%s k%d", p.Similar, p.GoldX, p.ReplayR, p.Epochs, strconv.FormatFloat(p.LR, 'g', 4, 64), p.Rank)
}

// String describes p for people.
func (p pipeline) String() string {
	replay := "R not replayed"
	if p.ReplayR {
		replay = "R replayed"
	}
	rank := "every weight"
	if p.Rank > 0 {
		rank = fmt.Sprintf("LoRA rank %d", p.Rank)
	}
	return fmt.Sprintf("%d similar per failure, gold x%d, %s, %d epochs, lr %g, %s", p.Similar, p.GoldX, replay, p.Epochs, p.LR, rank)
}

// move is an edge of the search graph: one change to a pipeline.
type move struct {
	Name string
	To   pipeline
}

// Bounds of the space, relative to the run's base recipe.
const (
	maxSimilar  = 16
	maxGoldX    = 3
	maxRank     = 64
	extraEpochs = 3
)

// moves lists the changes that lead from p to another pipeline inside the space.
func (p pipeline) moves(base pipeline) []move {
	var out []move
	add := func(name string, ok bool, f func(*pipeline)) {
		if !ok {
			return
		}
		q := p
		f(&q)
		out = append(out, move{Name: name, To: q})
	}
	add("more similar examples", p.Similar < maxSimilar, func(q *pipeline) { q.Similar = min(maxSimilar, max(2, 2*q.Similar)) })
	add("fewer similar examples", p.Similar > 0, func(q *pipeline) { q.Similar /= 2 })
	add("gold failures repeated once more", p.GoldX < maxGoldX, func(q *pipeline) { q.GoldX++ })
	add("gold failures repeated once less", p.GoldX > 1, func(q *pipeline) { q.GoldX-- })
	add("replay R", !p.ReplayR, func(q *pipeline) { q.ReplayR = true })
	add("no replay of R", p.ReplayR, func(q *pipeline) { q.ReplayR = false })
	add("one epoch more", p.Epochs < base.Epochs+extraEpochs, func(q *pipeline) { q.Epochs++ })
	add("one epoch less", p.Epochs > 1, func(q *pipeline) { q.Epochs-- })
	add("learning rate x0.5", p.LR > base.LR/4*1.001, func(q *pipeline) { q.LR /= 2 })
	add("learning rate x2", p.LR < base.LR*2*0.999, func(q *pipeline) { q.LR *= 2 })
	add("LoRA rank x2", p.Rank > 0 && p.Rank < maxRank, func(q *pipeline) { q.Rank *= 2 })
	return out
}

// node is a pipeline in the search graph with its Monte-Carlo statistics.
type node struct {
	Name   string   `json:"name"` // n00 (the root), n01, ... in order of evaluation
	P      pipeline `json:"pipeline"`
	Parent string   `json:"parent,omitempty"` // the node it was first reached from
	Move   string   `json:"move,omitempty"`
	Reward float64  `json:"reward"`
	visits int
	// best is what UCT exploits: the best reward found at or below the node (a search
	// for one best pipeline, not a game against an opponent, so the maximum, not the mean).
	best     float64
	children []*node
	untried  []move
	spent    bool // nothing left to try at or below it
}

// uctC weighs exploration against a node's value, a difference of metric values (a few
// hundredths between candidates is typical).
const uctC = 0.02

// mcts runs a Monte-Carlo graph search from root for at most budget evaluations
// (root included). eval trains and scores a new node and returns its reward and whether
// it broke more of R than the gate allows (which orders the changes tried next); stop,
// checked before each round, ends the search early (a wall-time budget). The search is
// deterministic for a seed and a sequence of rewards, so a resumed run that replays
// recorded rewards walks the same graph. It returns the evaluated nodes in order.
func mcts(root pipeline, budget int, seed uint64, stop func() bool, eval func(n *node) (reward float64, broke bool, err error)) ([]*node, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6d637473))
	byKey := map[string]*node{}
	var order []*node
	visit := func(n *node, parent *node, m move) error {
		n.Name = fmt.Sprintf("n%02d", len(order))
		if parent != nil {
			n.Parent, n.Move = parent.Name, m.Name
		}
		byKey[n.P.key()] = n
		order = append(order, n)
		r, broke, err := eval(n)
		if err != nil {
			return err
		}
		n.Reward = r
		n.untried = n.P.moves(root)
		rng.Shuffle(len(n.untried), func(i, j int) { n.untried[i], n.untried[j] = n.untried[j], n.untried[i] })
		prefer := preferWhenSound
		if broke {
			prefer = preferWhenBroke
		}
		sort.SliceStable(n.untried, func(i, j int) bool { return rank(prefer, n.untried[i]) < rank(prefer, n.untried[j]) })
		return nil
	}
	top := &node{P: root}
	if err := visit(top, nil, move{}); err != nil {
		return order, err
	}
	top.visits, top.best = 1, top.Reward
	for len(order) < budget && !exhausted(top, map[*node]bool{}) && (stop == nil || !stop()) {
		path := []*node{top}
		n := top
		var fresh *node
		for fresh == nil {
			if len(n.untried) > 0 && len(n.children) < widen(n.visits) {
				m := n.untried[0]
				n.untried = n.untried[1:]
				if old := byKey[m.To.key()]; old != nil {
					// Another path reached this pipeline: link it, evaluate nothing.
					if !hasChild(n, old) && !reaches(old, n, map[*node]bool{}) {
						n.children = append(n.children, old)
					}
					continue
				}
				fresh = &node{P: m.To}
				if err := visit(fresh, n, m); err != nil {
					return order, err
				}
				n.children = append(n.children, fresh)
				path = append(path, fresh)
				break
			}
			next := bestChild(n)
			if next == nil {
				if len(n.untried) > 0 {
					n.visits++ // widen this node on the next walk
				}
				break
			}
			n = next
			path = append(path, n)
		}
		if fresh == nil {
			continue
		}
		for _, p := range path {
			if p.visits == 0 || fresh.Reward > p.best {
				p.best = fresh.Reward
			}
			p.visits++
		}
	}
	return order, nil
}

// widen is how many children a node visited v times may have (progressive widening:
// deepen the promising pipelines instead of trying every change of the root first).
func widen(v int) int { return 1 + int(math.Sqrt(float64(v))) }

// The order in which a node's changes are tried: after a candidate that broke more
// of R than the gate allows, the changes that protect R; otherwise the ones that add
// targeted data or training. Changes not listed follow in a seeded random order.
var (
	preferWhenBroke = []string{"replay R", "learning rate x0.5", "one epoch less", "gold failures repeated once less"}
	preferWhenSound = []string{"more similar examples", "gold failures repeated once more", "one epoch more", "replay R"}
)

func rank(prefer []string, m move) int {
	for i, p := range prefer {
		if m.Name == p {
			return i
		}
	}
	return len(prefer)
}

func hasChild(n, c *node) bool {
	for _, x := range n.children {
		if x == c {
			return true
		}
	}
	return false
}

// reaches says whether to is reachable from n through children (linking to an ancestor
// would make the walk loop).
func reaches(n, to *node, seen map[*node]bool) bool {
	if n == to {
		return true
	}
	if seen[n] {
		return false
	}
	seen[n] = true
	for _, c := range n.children {
		if reaches(c, to, seen) {
			return true
		}
	}
	return false
}

// exhausted says whether no node below n has an untried move.
// Once true it stays true (a node gains children only by trying its moves), so it is
// remembered.
func exhausted(n *node, seen map[*node]bool) bool {
	if n.spent || seen[n] {
		return true
	}
	seen[n] = true
	if len(n.untried) > 0 {
		return false
	}
	for _, c := range n.children {
		if !exhausted(c, seen) {
			return false
		}
	}
	n.spent = true
	return true
}

// bestChild picks by UCT among the children with something left to try below them;
// an unvisited child first. nil: none has.
func bestChild(n *node) *node {
	var best *node
	bestV := math.Inf(-1)
	for _, c := range n.children {
		if exhausted(c, map[*node]bool{}) {
			continue
		}
		v := math.Inf(1)
		if c.visits > 0 {
			v = c.best + uctC*math.Sqrt(math.Log(float64(n.visits+1))/float64(c.visits))
		}
		if v > bestV {
			best, bestV = c, v
		}
	}
	return best
}

// reward scores a gated candidate for the search: its held-out gain over the deployed
// model, less a hundredth per example of R broken beyond epsilon and less any shortfall
// on the previous version's evaluation set.
func reward(c, deployed Scores, epsilon int) float64 {
	return c.HeldOut - deployed.HeldOut - 0.01*float64(max(0, c.Regressions-epsilon)) - max(0, deployed.Previous-c.Previous)
}

// pipelineSeed gives each pipeline its own, stable data-sampling seed.
func pipelineSeed(seed uint64, p pipeline) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p.key()))
	return seed + h.Sum64()%1_000_003
}

// searchEnv is what the search builds curricula and candidates from.
type searchEnv struct {
	patterns       []*Pattern
	gold, variants map[string]Item
	pool           []task.Example
	poolIx         *index
	usable         func(int) bool
	parent         []task.Example
	base           baseline
	val, hold      []task.Example
	tr             *triager
}

// search runs SearchMCTS: 2 x Iterations candidates at most (within the wall-time
// and token budgets), each a pipeline one change away from one tried before, the first being the
// run's recipe with the score band's data. It returns the passing candidate with the best
// held-out metric (nil if none passed) and why the others were rejected.
func (st *state) search(ctx context.Context, start time.Time, env *searchEnv) (*candidate, []string, error) {
	cfg := st.cfg
	pol := policy(env.base.Deployed.HeldOut, 1)
	root := pipeline{Similar: pol.similar, GoldX: 1, Epochs: cfg.Recipe.Epochs, LR: cfg.Recipe.LR}
	if !cfg.Recipe.Full {
		root.Rank = cfg.Recipe.Rank
	}
	var cands []*candidate
	var reasons []string
	stop := func() bool {
		if why := st.spent(start); why != "" {
			reasons = append(reasons, fmt.Sprintf("%s after %d candidates", why, len(cands)))
			return true
		}
		return ctx.Err() != nil
	}
	fmt.Fprintf(cfg.Log, "search   Monte-Carlo graph search, at most %d candidates, starting from %s\n", 2*cfg.Iterations, root)
	nodes, err := mcts(root, 2*cfg.Iterations, cfg.Seed, stop, func(n *node) (float64, bool, error) {
		key := "search/" + n.Name
		if !st.lin.Has(key+"/node", nil) {
			if err := st.lin.Append(key+"/node", "search_node", n); err != nil {
				return 0, false, err
			}
		}
		// The data depends on the data knobs only, so equal data means equal curricula.
		data := pipeline{Similar: n.P.Similar, ReplayR: n.P.ReplayR}
		cur := st.curriculum(ctx, env, n.P.Similar, pol.teacher, n.P.ReplayR, pipelineSeed(cfg.Seed, data))
		if err := writeJSONL(filepath.Join(cfg.Out, "search", n.Name, "curriculum.jsonl"), cur.Items); err != nil {
			return 0, false, err
		}
		r := cfg.Recipe
		r.Name, r.Epochs, r.LR, r.Seed = n.Name, n.P.Epochs, n.P.LR, cfg.Recipe.Seed+1
		if !r.Full {
			if r.Alpha > 0 { // keep the run's alpha/rank ratio
				r.Alpha *= float64(n.P.Rank) / float64(r.Rank)
			}
			r.Rank = n.P.Rank
		}
		c, err := st.candidate(ctx, "search", r, n.P.GoldX, env.parent, cur, env.base, env.val, env.hold)
		if err != nil {
			return 0, false, err
		}
		cands = append(cands, c)
		from := "the run's recipe"
		if n.Parent != "" {
			from = n.Parent + " + " + n.Move
		}
		st.logCandidate(c, fmt.Sprintf("%s; curriculum %d %v", from, len(cur.Items), cur.Mix), env.base)
		if !c.Pass {
			reasons = append(reasons, fmt.Sprintf("%s (%s): %s", c.Name, from, c.Verdict))
		}
		return reward(c.Scores, env.base.Deployed, cfg.Epsilon), c.Scores.Regressions > cfg.Epsilon, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !st.lin.Has("search", nil) {
		if err := st.lin.Append("search", "search", map[string]any{"nodes": nodes}); err != nil {
			return nil, nil, err
		}
	}
	var best *candidate
	for _, c := range cands {
		if c.Pass && (best == nil || c.Scores.HeldOut > best.Scores.HeldOut ||
			c.Scores.HeldOut == best.Scores.HeldOut && c.Scores.Regressions < best.Scores.Regressions) {
			best = c
		}
	}
	return best, reasons, nil
}
