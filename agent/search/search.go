// Package search is how the agent chooses the pipelines it trains (docs/DESIGN.md §5): the
// greedy search (rounds of at least two candidates, the first round with one that passes
// ends it) and a Monte-Carlo graph search over a space of pipelines, each one change away
// from one tried before. The pipeline space is the mode's: any type with a key and the
// changes that lead from it (Point).
package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Point is a pipeline of a search space: Key identifies it (pipelines reached by two
// paths are one node), Moves lists the changes that lead from it to another pipeline of
// the space (root: the search's starting point, which bounds the space).
type Point[P any] interface {
	Key() string
	Moves(root P) []Move[P]
}

// Move is an edge of the search graph: one change to a pipeline.
type Move[P any] struct {
	Name string
	To   P
}

// Options configure MCTS.
type Options struct {
	Budget int    // evaluations at most, the root included
	Seed   uint64 // orders the untried changes (deterministically)
	// Stop, when set, is asked before each round whether to end the search.
	Stop func() bool
	// The order in which a node's changes are tried, by name: after a candidate that
	// broke what the gate protects, PreferWhenBroke; otherwise PreferWhenSound. Changes
	// not listed follow in a seeded random order.
	PreferWhenBroke, PreferWhenSound []string
}

// Node is a pipeline in the search graph with its Monte-Carlo statistics.
type Node[P Point[P]] struct {
	Name   string  `json:"name"` // n00 (the root), n01, ... in order of evaluation
	P      P       `json:"pipeline"`
	Parent string  `json:"parent,omitempty"` // the node it was first reached from
	Move   string  `json:"move,omitempty"`
	Reward float64 `json:"reward"`
	visits int
	// best is what UCT exploits: the best reward found at or below the node (a search
	// for one best pipeline, not a game against an opponent, so the maximum, not the mean).
	best     float64
	children []*Node[P]
	untried  []Move[P]
	spent    bool // nothing left to try at or below it
}

// uctC weighs exploration against a node's value, a difference of metric values (a few
// hundredths between candidates is typical).
const uctC = 0.02

// MCTS runs a Monte-Carlo graph search from root for at most o.Budget evaluations
// (root included). eval trains and scores a new node and returns its reward and whether
// it broke what the gate protects (which orders the changes tried next, o.PreferWhenBroke
// first; otherwise o.PreferWhenSound); o.Stop, checked before each round, ends the search
// early (a budget spent, a stop request). The search is deterministic for a seed and a
// sequence of rewards, so a resumed run that replays recorded rewards walks the same
// graph. It returns the evaluated nodes in order.
func MCTS[P Point[P]](root P, o Options, eval func(n *Node[P]) (reward float64, broke bool, err error)) ([]*Node[P], error) {
	budget, stop := o.Budget, o.Stop
	rng := rand.New(rand.NewPCG(o.Seed, 0x6d637473))
	byKey := map[string]*Node[P]{}
	var order []*Node[P]
	visit := func(n *Node[P], parent *Node[P], m Move[P]) error {
		n.Name = fmt.Sprintf("n%02d", len(order))
		if parent != nil {
			n.Parent, n.Move = parent.Name, m.Name
		}
		byKey[n.P.Key()] = n
		order = append(order, n)
		r, broke, err := eval(n)
		if err != nil {
			return err
		}
		n.Reward = r
		n.untried = n.P.Moves(root)
		rng.Shuffle(len(n.untried), func(i, j int) { n.untried[i], n.untried[j] = n.untried[j], n.untried[i] })
		prefer := o.PreferWhenSound
		if broke {
			prefer = o.PreferWhenBroke
		}
		sort.SliceStable(n.untried, func(i, j int) bool { return rank(prefer, n.untried[i]) < rank(prefer, n.untried[j]) })
		return nil
	}
	top := &Node[P]{P: root}
	if err := visit(top, nil, Move[P]{}); err != nil {
		return order, err
	}
	top.visits, top.best = 1, top.Reward
	for len(order) < budget && !exhausted(top, map[*Node[P]]bool{}) && (stop == nil || !stop()) {
		path := []*Node[P]{top}
		n := top
		var fresh *Node[P]
		for fresh == nil {
			if len(n.untried) > 0 && len(n.children) < widen(n.visits) {
				m := n.untried[0]
				n.untried = n.untried[1:]
				if old := byKey[m.To.Key()]; old != nil {
					// Another path reached this pipeline: link it, evaluate nothing.
					if !hasChild(n, old) && !reaches(old, n, map[*Node[P]]bool{}) {
						n.children = append(n.children, old)
					}
					continue
				}
				fresh = &Node[P]{P: m.To}
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

func rank[P Point[P]](prefer []string, m Move[P]) int {
	for i, p := range prefer {
		if m.Name == p {
			return i
		}
	}
	return len(prefer)
}

func hasChild[P Point[P]](n, c *Node[P]) bool {
	for _, x := range n.children {
		if x == c {
			return true
		}
	}
	return false
}

// reaches says whether to is reachable from n through children (linking to an ancestor
// would make the walk loop).
func reaches[P Point[P]](n, to *Node[P], seen map[*Node[P]]bool) bool {
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
func exhausted[P Point[P]](n *Node[P], seen map[*Node[P]]bool) bool {
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
func bestChild[P Point[P]](n *Node[P]) *Node[P] {
	var best *Node[P]
	bestV := math.Inf(-1)
	for _, c := range n.children {
		if exhausted(c, map[*Node[P]]bool{}) {
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

// Greedy runs rounds of candidates: before each round stop (when set) may end the search
// with its reason; round(it) trains and gates round it's candidates (at least two) and
// returns them; the round with a passing candidate ends the search with its best
// (better orders two passing ones). It returns the winner (ok false when none passed in
// the rounds run) and why the search ended early ("" when it ran every round or found
// one).
func Greedy[C any](rounds int, stop func() string, round func(it int) ([]C, error), pass func(C) bool, better func(a, b C) bool) (best C, ok bool, why string, err error) {
	for it := 1; it <= rounds; it++ {
		if stop != nil {
			if why := stop(); why != "" {
				return best, false, fmt.Sprintf("%s after %d rounds", why, it-1), nil
			}
		}
		cands, err := round(it)
		if err != nil {
			return best, false, "", err
		}
		for _, c := range cands {
			if pass(c) && (!ok || better(c, best)) {
				best, ok = c, true
			}
		}
		if ok {
			return best, true, "", nil
		}
	}
	return best, false, "", nil
}
