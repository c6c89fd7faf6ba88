package production

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/search"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
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

// Key identifies a pipeline (search.Point).
func (p pipeline) Key() string {
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

// Bounds of the space, relative to the run's base recipe.
const (
	maxSimilar  = 16
	maxGoldX    = 3
	maxRank     = 64
	extraEpochs = 3
)

// Moves lists the changes that lead from p to another pipeline inside the space
// (search.Point). A new search move is one line here.
func (p pipeline) Moves(base pipeline) []search.Move[pipeline] {
	var out []search.Move[pipeline]
	add := func(name string, ok bool, f func(*pipeline)) {
		if !ok {
			return
		}
		q := p
		f(&q)
		out = append(out, search.Move[pipeline]{Name: name, To: q})
	}
	add("more similar examples", p.Similar < maxSimilar, func(q *pipeline) { q.Similar = min(maxSimilar, max(2, 2*q.Similar)) })
	add("fewer similar examples", p.Similar > 0, func(q *pipeline) { q.Similar /= 2 })
	add("gold failures repeated once more", p.GoldX < maxGoldX, func(q *pipeline) { q.GoldX++ })
	add("gold failures repeated once less", p.GoldX > 1, func(q *pipeline) { q.GoldX-- })
	add("replay R", base.ReplayR && !p.ReplayR, func(q *pipeline) { q.ReplayR = true }) // the root replays R when it may
	add("no replay of R", p.ReplayR, func(q *pipeline) { q.ReplayR = false })
	add("one epoch more", p.Epochs < base.Epochs+extraEpochs, func(q *pipeline) { q.Epochs++ })
	add("one epoch less", p.Epochs > 1, func(q *pipeline) { q.Epochs-- })
	add("learning rate x0.5", p.LR > base.LR/4*1.001, func(q *pipeline) { q.LR /= 2 })
	add("learning rate x2", p.LR < base.LR*2*0.999, func(q *pipeline) { q.LR *= 2 })
	add("LoRA rank x2", p.Rank > 0 && p.Rank < maxRank, func(q *pipeline) { q.Rank *= 2 })
	return out
}

// The order in which a node's changes are tried: after a candidate that broke more of R
// than the gate allows, the changes that protect R; otherwise the ones that add targeted
// data or training.
var (
	preferWhenBroke = []string{"replay R", "learning rate x0.5", "one epoch less", "gold failures repeated once less"}
	preferWhenSound = []string{"more similar examples", "gold failures repeated once more", "one epoch more", "replay R"}
)

// reward scores a gated candidate for the search: its held-out gain over the deployed
// model, less a hundredth per example of R broken beyond epsilon and less any shortfall
// on the previous version's evaluation set.
func reward(c, deployed Scores, epsilon int) float64 {
	return c.HeldOut - deployed.HeldOut - 0.01*float64(max(0, c.Regressions-epsilon)) - max(0, deployed.Previous-c.Previous)
}

// pipelineSeed gives each pipeline its own, stable data-sampling seed.
func pipelineSeed(seed uint64, p pipeline) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p.Key()))
	return seed + h.Sum64()%1_000_003
}

// space is what the search builds curricula and candidates from.
type space struct {
	in       *inputs
	run      *agent.Run
	patterns []*Pattern
	tg       *triaged
	poolIx   *text.Index
	base     baseline
	// broken counts, per id of R, the candidates of this run that got it wrong: a later
	// curriculum replays such an example more often (regression-aware replay).
	broken map[string]int
	scored []*candidate // every candidate the search gated, in order
}

// maxReplayCopies caps how many times one example of R is replayed.
const maxReplayCopies = 3

// noteScored records a gated candidate and the examples of R it broke.
func (sp *space) noteScored(c *candidate) {
	sp.scored = append(sp.scored, c)
	for _, id := range c.Scores.Broken {
		sp.broken[id]++
	}
}

// band is the score-band policy of docs/DESIGN.md §5.
type band struct {
	name    string
	similar int // similar pool examples per gold failure
	teacher int // teacher examples per gold failure
	tune    bool
}

func policy(metric float64, it int) band {
	switch {
	case metric < 0.80:
		return band{name: "rebuild data (deployed below 0.80): many similar examples per failure", similar: 2 * it, teacher: 2, tune: false}
	case metric < 0.95:
		return band{name: "tune (deployed 0.80-0.95): targeted data, hyperparameters searched", similar: it, teacher: 1, tune: true}
	default:
		return band{name: "targeted (deployed above 0.95): a few examples per failure pattern", similar: max(it-1, 0), teacher: 1, tune: true}
	}
}

// plan is a candidate to train: its recipe and how many copies of each gold failure
// its training set holds.
type plan struct {
	recipe finetune.Recipe
	goldX  int
}

// candidatePlans are the pipelines tried in a greedy round: the base recipe, and a
// second one that weighs the failures twice (and, when tuning, trains longer at a lower
// rate).
func candidatePlans(r finetune.Recipe, pol band, it int) []plan {
	a := r
	a.Name = "A"
	a.Seed = r.Seed + uint64(it)
	b := a
	b.Name = "B-gold-x2"
	if pol.tune {
		b.Epochs = r.Epochs + 1
		b.LR = r.LR * 0.6
	}
	return []plan{{a, 1}, {b, 2}}
}

// replayable reports whether R may be trained on: R is the given traffic (the task's
// validation split, the held-out set's core, is not traffic unless a user makes it so).
// Without traffic R is the held-out validation examples the deployed model gets right,
// and training on them would bias every held-out score.
func (sp *space) replayable() bool { return sp.in.traffic != nil && len(sp.base.R) > 0 }

// curriculum builds the curriculum for similarPer similar pool examples per gold
// failure (extended by the teacher, when there is one), with R appended when replayR (and
// replayable: once per example, and once more for each earlier candidate that broke it, up
// to maxReplayCopies); a curriculum that replays R holds every admitted training failure, those of
// no confirmed pattern included (consolidation: R anchors what the deployed model gets
// right, and the gate checks the rest).
func (sp *space) curriculum(ctx context.Context, similarPer, teacherPer int, replayR bool, seed uint64) *Curriculum {
	in, tg := sp.in, sp.tg
	replayR = replayR && sp.replayable()
	cur := buildCurriculum(in.t, sp.patterns, tg.gold, tg.variants, in.pool, sp.poolIx, tg.usable, in.parent, similarPer, replayR, seed)
	if in.cfg.Teacher != nil {
		if err := extendByTeacher(ctx, in.cfg.Teacher, in.t, tg.tr, cur, teacherPer); err != nil {
			fmt.Fprintf(in.cfg.Log, "teacher  %v (continuing without)\n", err)
		}
	}
	if replayR {
		for _, ex := range sp.base.R {
			if tg.trafficPoison[ex.ID] {
				continue
			}
			for k := 0; k < min(1+sp.broken[ex.ID], maxReplayCopies); k++ {
				cur.Items = append(cur.Items, Item{Example: ex, Source: SrcTraffic})
				cur.Mix[SrcTraffic]++
			}
		}
	}
	return cur
}

// greedy runs the greedy search: rounds of up to two candidates (candidatePlans) on the
// score band's curriculum, with R replayed where it is traffic (a retrained model keeps
// what it is shown; the fair baseline does the same). A round ends at its first passing
// candidate, which is returned (nil if none passed in any round) with why the others were
// rejected.
func (sp *space) greedy(ctx context.Context) (*candidate, []string, error) {
	cfg := sp.in.cfg
	var reasons []string
	replayR := sp.replayable()
	stop := func() string {
		if ctx.Err() != nil {
			return "stop requested"
		}
		return sp.in.budget.Spent()
	}
	tried := map[string]string{} // training fingerprint -> the candidate that trained it
	best, _, why, err := search.Greedy(cfg.Iterations, stop, func(it int) ([]*candidate, error) {
		pol := policy(sp.base.Deployed.HeldOut, it)
		cur := sp.curriculum(ctx, pol.similar, pol.teacher, replayR, cfg.Seed+uint64(it)*101)
		if replayR {
			pol.name += "; R (the traffic the deployed model gets right) replayed"
		}
		key := fmt.Sprintf("iter%d", it)
		if err := fsutil.WriteJSONL(sp.run.Path(key, "curriculum.jsonl"), cur.Items); err != nil {
			return nil, err
		}
		rec := map[string]any{"iteration": it, "policy": pol.name, "mix": cur.Mix, "items": len(cur.Items)}
		if cfg.Teacher != nil { // what was taken out of the teacher's prompts so far: kinds and numbers, never values
			rec["teacher_redacted"] = cfg.Teacher.Redacted().String()
		}
		if err := sp.run.Lineage.Append(key+"/curriculum", "curriculum", rec); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "iter %d   policy %s; curriculum %d examples %v\n", it, pol.name, len(cur.Items), cur.Mix)
		var cands []*candidate
		for _, pl := range candidatePlans(cfg.Recipe, pol, it) {
			// A round whose curriculum and recipe an earlier round already trained (the
			// band's data did not grow) would differ from it by its seed alone.
			fp := trainingFingerprint(cur, pl)
			if earlier, ok := tried[fp]; ok {
				reasons = append(reasons, fmt.Sprintf("iteration %d, %s: the training set and recipe of %s, not trained again", it, pl.recipe.Name, earlier))
				fmt.Fprintf(cfg.Log, "  %s/%s: the training set and recipe of %s, not trained again\n", key, pl.recipe.Name, earlier)
				continue
			}
			tried[fp] = key + "/" + pl.recipe.Name
			c, err := sp.candidate(ctx, key, pl.recipe, pl.goldX, cur)
			if err != nil {
				return nil, err
			}
			sp.logCandidate(c, "")
			sp.noteScored(c)
			cands = append(cands, c)
			if c.Pass { // the round's later plans are not trained: the first that passes is promoted sooner
				break
			}
			reasons = append(reasons, fmt.Sprintf("iteration %d, %s: %s", it, c.Name, c.Verdict))
		}
		return cands, nil
	}, func(c *candidate) bool { return c.Pass }, func(a, b *candidate) bool { return a.Scores.HeldOut > b.Scores.HeldOut })
	if why != "" {
		reasons = append(reasons, why)
	}
	return best, reasons, err
}

// trainingFingerprint identifies what a plan trains on a curriculum: the items (their
// source and example) and the recipe without its seed.
func trainingFingerprint(cur *Curriculum, pl plan) string {
	h := sha256.New()
	r := pl.recipe
	r.Name, r.Seed = "", 0
	fmt.Fprintf(h, "%+v x%d\n", r, pl.goldX)
	for _, it := range cur.Items {
		fmt.Fprintf(h, "%+v\n", it)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mcts runs the Monte-Carlo graph search: 2 x Iterations candidates at most (within the
// wall-time and token budgets), each a pipeline one change away from one tried before,
// the first being the run's recipe with the score band's data. It returns the passing
// candidate with the best held-out metric (nil if none passed) and why the others were
// rejected.
func (sp *space) mcts(ctx context.Context) (*candidate, []string, error) {
	cfg := sp.in.cfg
	pol := policy(sp.base.Deployed.HeldOut, 1)
	root := pipeline{Similar: pol.similar, GoldX: 1, ReplayR: sp.replayable(), Epochs: cfg.Recipe.Epochs, LR: cfg.Recipe.LR}
	if !cfg.Recipe.Full {
		root.Rank = cfg.Recipe.Rank
	}
	var cands []*candidate
	var reasons []string
	stop := func() bool {
		if why := sp.in.budget.Spent(); why != "" {
			reasons = append(reasons, fmt.Sprintf("%s after %d candidates", why, len(cands)))
			return true
		}
		return ctx.Err() != nil
	}
	fmt.Fprintf(cfg.Log, "search   Monte-Carlo graph search, at most %d candidates, starting from %s\n", 2*cfg.Iterations, root)
	nodes, err := search.MCTS(root, search.Options{Budget: 2 * cfg.Iterations, Seed: cfg.Seed, Stop: stop,
		PreferWhenBroke: preferWhenBroke, PreferWhenSound: preferWhenSound}, func(n *search.Node[pipeline]) (float64, bool, error) {
		key := "search/" + n.Name
		if err := sp.run.Lineage.Append(key+"/node", "search_node", n); err != nil {
			return 0, false, err
		}
		// The data depends on the data knobs (and on which examples of R earlier candidates
		// broke), so equal data means equal curricula.
		data := pipeline{Similar: n.P.Similar, ReplayR: n.P.ReplayR}
		cur := sp.curriculum(ctx, n.P.Similar, pol.teacher, n.P.ReplayR, pipelineSeed(cfg.Seed, data))
		if err := fsutil.WriteJSONL(sp.run.Path("search", n.Name, "curriculum.jsonl"), cur.Items); err != nil {
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
		c, err := sp.candidate(ctx, "search", r, n.P.GoldX, cur)
		if err != nil {
			return 0, false, err
		}
		cands = append(cands, c)
		sp.noteScored(c)
		from := "the run's recipe"
		if n.Parent != "" {
			from = n.Parent + " + " + n.Move
		}
		sp.logCandidate(c, fmt.Sprintf("%s; curriculum %d %v", from, len(cur.Items), cur.Mix))
		if !c.Pass {
			reasons = append(reasons, fmt.Sprintf("%s (%s): %s", c.Name, from, c.Verdict))
		}
		return reward(c.Scores, sp.base.Deployed, cfg.Epsilon), c.Scores.Regressions > cfg.Epsilon, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := agent.Stopped(ctx); err != nil {
		return nil, nil, err // an interrupted search is resumed, not decided
	}
	if err := sp.run.Lineage.Append("search", "search", map[string]any{"nodes": nodes}); err != nil {
		return nil, nil, err
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

// newSpace gathers what the search draws on.
func newSpace(in *inputs, run *agent.Run, tg *triaged, base baseline, d *Diagnosis) *space {
	texts := make([]string, len(in.pool))
	for i, ex := range in.pool {
		texts[i] = ex.Text
	}
	return &space{in: in, run: run, patterns: d.Patterns, tg: tg, poolIx: text.NewIndex(texts), base: base, broken: map[string]int{}}
}
