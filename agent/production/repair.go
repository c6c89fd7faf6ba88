package production

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
)

// The repair's settings: each example of R its source broke is shown repairCopies
// times, beside R itself and anchorPerR examples of the source's training set per
// example of R; repairEpochs over that, at repairRate times the source's learning rate;
// at most maxRepairs repairs in a row, each from the one before.
const (
	repairCopies = 4
	anchorPerR   = 3
	repairEpochs = 2
	repairRate   = 0.2
	maxRepairs   = 3
)

// repairSource is the candidate a repair continues: of those the gate rejected for
// breaking more than epsilon examples of R alone (the held-out metric improved and the
// ratchet held), the best by held-out metric (then the fewest broken); nil if none.
func repairSource(cands []*candidate, deployed Scores, epsilon int) *candidate {
	var best *candidate
	for _, c := range cands {
		sc := c.Scores
		if c.Pass || sc.Regressions <= epsilon || !(sc.HeldOut > deployed.HeldOut) || sc.Previous < deployed.Previous {
			continue
		}
		if best == nil || sc.HeldOut > best.Scores.HeldOut || sc.HeldOut == best.Scores.HeldOut && sc.Regressions < best.Scores.Regressions {
			best = c
		}
	}
	return best
}

// repairSet is one repair's training set: every example of R the source broke
// repairCopies times, R itself once (poison excepted, as in every replay), and a seeded
// sample of anchorPerR examples per example of R from the source's training set, which
// holds the rest of what it learnt in place.
func (t *triaged) repairSet(tk *task.Task, trained, r []task.Example, broken []string, seed uint64) []task.Example {
	byID := make(map[string]task.Example, len(r))
	var out []task.Example
	for _, ex := range r {
		if !t.trafficPoison[ex.ID] {
			byID[ex.ID] = ex
			out = append(out, ex)
		}
	}
	for _, id := range broken {
		if ex, ok := byID[id]; ok {
			for k := 0; k < repairCopies; k++ {
				out = append(out, ex)
			}
		}
	}
	return append(out, tk.Sample(trained, anchorPerR*len(r), seed)...)
}

// repair is the last step of a search that found no candidate to promote: where R is
// traffic (it may be trained on), the candidate that failed the gate on R alone
// (repairSource) is trained on from its own weights, gently (repairEpochs at
// repairRate of its learning rate) on the examples of R it broke with R and an anchor of
// its own training set (repairSet), and gated like any candidate; while the result still
// fails on R alone, it is repaired in turn, maxRepairs times at most. A weak deployment
// gets many of R right by chance, and a retrained model far better elsewhere loses a
// few of them; a retrain from the base weighting them breaks others as often, a
// continuation aims at exactly those. A repaired candidate keeps its source's training
// set (the repair's examples are drawn from it) for the version promoted from it. It
// returns the last repair (nil when there was nothing to repair or the search's budget
// was spent).
func (sp *space) repair(ctx context.Context) (*candidate, error) {
	cfg := sp.in.cfg
	src := repairSource(sp.scored, sp.base.Deployed, cfg.Epsilon)
	if src == nil || !sp.replayable() || ctx.Err() != nil {
		return nil, nil
	}
	trained, bad, err := sp.in.t.ReadFile(filepath.Join(src.trained(sp.run.Dir), versions.TrainingSetFile))
	if err != nil {
		return nil, fmt.Errorf("repair of %s: %w", src.Name, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("repair of %s: its training set has %d bad lines (line %d: %s)", src.Name, len(bad), bad[0].Line, bad[0].Reason)
	}
	first, name := src.Recipe, strings.ReplaceAll(src.Name, "/", "-")
	var last *candidate
	for k := 1; k <= maxRepairs; k++ {
		if why := sp.in.budget.Spent(); why != "" {
			fmt.Fprintf(cfg.Log, "repair   not tried (%s): %s broke %d of R\n", why, src.Name, src.Scores.Regressions)
			break
		}
		train := sp.tg.repairSet(sp.in.t, trained, sp.base.R, src.Scores.Broken, first.Seed+uint64(k))
		r := first
		r.Name = fmt.Sprintf("%s-%d", name, k)
		r.Epochs, r.LR, r.Seed = repairEpochs, first.LR*repairRate, first.Seed+uint64(k)
		fmt.Fprintf(cfg.Log, "repair   %s (%s %.4f) broke %d of R: %d epochs from its weights at lr %g on those %d times, R and %d of its training examples\n",
			src.Name, sp.in.t.Metric, src.Scores.HeldOut, src.Scores.Regressions, r.Epochs, r.LR, repairCopies, min(anchorPerR*len(sp.base.R), len(trained)))
		c, err := sp.trainCandidate(ctx, "repair", r, train, trained, map[string]any{"repair_of": src.Name, "broken": len(src.Scores.Broken)}, src)
		if err != nil {
			return nil, err
		}
		sp.logCandidate(c, "repair of "+src.Name)
		last = c
		if c.Pass || repairSource([]*candidate{c}, sp.base.Deployed, cfg.Epsilon) == nil {
			break // promoted, or it no longer fails on R alone: repairing it further would not help
		}
		src = c
	}
	return last, nil
}
