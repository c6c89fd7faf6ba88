package production

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
)

// repairCopies is how many more times a repair shows each example of R its source broke.
const repairCopies = 4

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

// repairSet is a repair's training set: the source's own training set, with every
// example of R it broke (poison excepted) repairCopies times more.
func repairSet(trained []task.Example, r []task.Example, broken []string, poison map[string]bool) []task.Example {
	byID := make(map[string]task.Example, len(r))
	for _, ex := range r {
		byID[ex.ID] = ex
	}
	out := append([]task.Example(nil), trained...)
	for _, id := range broken {
		ex, ok := byID[id]
		if !ok || poison[id] {
			continue
		}
		for k := 0; k < repairCopies; k++ {
			out = append(out, ex)
		}
	}
	return out
}

// repair is the last step of a search that found no candidate to promote: where R is
// traffic (it may be trained on), the candidate that failed the gate on R alone
// (repairSource) is trained one more epoch, from its own weights at half its learning
// rate, on its training set with the examples of R it broke shown repairCopies times
// more, and gated like any candidate. A weak deployment gets many of R right by chance,
// and a retrained model that is far better elsewhere loses a few of them; the repair
// aims at exactly those. It returns nil when there is nothing to repair or the
// search's budget is spent.
func (sp *space) repair(ctx context.Context) (*candidate, error) {
	cfg := sp.in.cfg
	src := repairSource(sp.scored, sp.base.Deployed, cfg.Epsilon)
	if src == nil || !sp.replayable() || ctx.Err() != nil {
		return nil, nil
	}
	if why := sp.in.budget.Spent(); why != "" {
		fmt.Fprintf(cfg.Log, "repair   not tried (%s): %s broke %d of R\n", why, src.Name, src.Scores.Regressions)
		return nil, nil
	}
	trained, bad, err := sp.in.t.ReadFile(filepath.Join(src.trained(sp.run.Dir), versions.TrainingSetFile))
	if err != nil {
		return nil, fmt.Errorf("repair of %s: %w", src.Name, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("repair of %s: its training set has %d bad lines (line %d: %s)", src.Name, len(bad), bad[0].Line, bad[0].Reason)
	}
	train := repairSet(trained, sp.base.R, src.Scores.Broken, sp.tg.trafficPoison)
	r := src.Recipe
	r.Name = strings.ReplaceAll(src.Name, "/", "-")
	r.Epochs, r.LR, r.Seed = 1, src.Recipe.LR/2, src.Recipe.Seed+1
	fmt.Fprintf(cfg.Log, "repair   %s (%s %.4f) broke %d of R: one more epoch from its weights at lr %g, those examples %d times more\n",
		src.Name, sp.in.t.Metric, src.Scores.HeldOut, src.Scores.Regressions, r.LR, repairCopies)
	c, err := sp.trainCandidate(ctx, "repair", r, train, map[string]any{"source_examples": len(trained), "broken_repeated": len(train) - len(trained)}, src)
	if err != nil {
		return nil, err
	}
	sp.logCandidate(c, "repair of "+src.Name)
	return c, nil
}
