package coldstart

import (
	"fmt"
	"strconv"

	"github.com/pioneer-ai/pioneer/agent/search"
)

// The searches.
const (
	SearchGreedy = "greedy"
	SearchMCTS   = "mcts"
)

// The strategies (S of the search's π = (D, H, S)): LoRA adapters, every weight, or
// both searched (the greedy search's second round tries every weight beside LoRA).
const (
	StrategySearch = "search"
	StrategyLoRA   = "lora"
	StrategyFull   = "full"
)

// fullLRShare is the learning rate of a candidate trained in every weight against the
// LoRA candidate it varies: a tenth (every weight moves, not a low-rank update).
const fullLRShare = 0.1

// point is a cold-start pipeline in the Monte-Carlo search's space: the data's size
// (0: all the curation leaves), epochs, learning rate, the strategy (LoRA of a rank, or
// every weight) and LoRA rank.
type point struct {
	N      int     `json:"train_examples"`
	Epochs int     `json:"epochs"`
	LR     float64 `json:"lr"`
	Full   bool    `json:"full,omitempty"` // every weight trains (Rank is then unused)
	Rank   int     `json:"rank"`
	pool   int     // examples the curation can give (bounds N)
	either bool    // the strategy is searched: the moves between LoRA and every weight exist
}

// Key identifies a pipeline (search.Point).
func (p point) Key() string {
	if p.Full {
		return fmt.Sprintf("n%d e%d lr%s full", p.N, p.Epochs, strconv.FormatFloat(p.LR, 'g', 4, 64))
	}
	return fmt.Sprintf("n%d e%d lr%s r%d", p.N, p.Epochs, strconv.FormatFloat(p.LR, 'g', 4, 64), p.Rank)
}

// Bounds of the space, relative to the run's recipe.
const (
	coldMaxRank   = 64
	coldMaxEpochs = 3 // more than the recipe's
)

// Moves are the changes from p inside the space (search.Point): twice or half the data,
// an epoch more or less, twice or half the learning rate (within four times the root's
// either way, the root's rate taken at fullLRShare for every weight when the root is
// LoRA), twice the rank, and, when the strategy is searched, every weight instead of
// LoRA (at fullLRShare of the rate) and back.
func (p point) Moves(root point) []search.Move[point] {
	lr := root.LR // the rate the learning-rate bounds are relative to
	switch {
	case p.Full && !root.Full:
		lr *= fullLRShare
	case !p.Full && root.Full:
		lr /= fullLRShare
	}
	var out []search.Move[point]
	add := func(name string, ok bool, f func(*point)) {
		if ok {
			q := p
			f(&q)
			out = append(out, search.Move[point]{Name: name, To: q})
		}
	}
	add("twice the data", p.N > 0, func(q *point) {
		if q.N*2 >= q.pool {
			q.N = 0
		} else {
			q.N *= 2
		}
	})
	add("half the data", (p.N == 0 && p.pool > 64) || p.N >= 64, func(q *point) {
		if q.N == 0 {
			q.N = q.pool / 2
		} else {
			q.N /= 2
		}
	})
	add("one epoch more", p.Epochs < root.Epochs+coldMaxEpochs, func(q *point) { q.Epochs++ })
	add("one epoch less", p.Epochs > 1, func(q *point) { q.Epochs-- })
	add("learning rate x2", p.LR < lr*4*0.999, func(q *point) { q.LR *= 2 })
	add("learning rate x0.5", p.LR > lr/4*1.001, func(q *point) { q.LR /= 2 })
	add("LoRA rank x2", !p.Full && p.Rank < coldMaxRank, func(q *point) { q.Rank *= 2 })
	add("every weight", p.either && !p.Full, func(q *point) { q.Full, q.LR = true, q.LR*fullLRShare })
	add("LoRA", p.either && p.Full, func(q *point) { q.Full, q.LR = false, q.LR/fullLRShare })
	return out
}
