package production

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/versions"
)

// The refit: the search chooses a pipeline on the held-out set, whose held-back failures
// (30 % of the admitted ones) no candidate trains on. Once a candidate has passed the
// gate, its pipeline is trained once more with the held-back failures added (as many
// copies of each as of a training failure), since they are the traffic's own failures
// and the naive retraining trains on every one of them. The refit cannot be judged on the
// held-back failures any more, so its gate is the rest of the evidence: at most ε
// examples of R broken, the ratchet on the previous version's set, and a metric on V (the
// held-out set's validation examples, trained on by neither) no lower than the winner's
// by more than one standard error of the difference of two V metrics (√2 times the
// winner's metric's, standardError). A refit that fails leaves
// the winner promoted; either way the run's reasons say what happened.

// refitStep is the lineage step (after the candidate's key) that records the refit.
const refitStep = "refit"

// refit trains the winner's pipeline on its training set plus the held-back failures and
// returns what is to be promoted (the refit if it passed its gate, else the winner) and a
// line for the run's reasons ("" when there is nothing to refit).
func (sp *space) refit(ctx context.Context, winner *candidate) (*candidate, string, error) {
	hold := sp.tg.hold
	if len(hold) == 0 {
		return winner, "", nil
	}
	if why := sp.in.budget.Spent(); why != "" {
		return winner, fmt.Sprintf("refit with the %d held-back failures not trained: %s", len(hold), why), nil
	}
	path := filepath.Join(winner.trained(sp.run.Dir), versions.TrainingSetFile)
	train, bad, err := sp.in.t.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("refit: the winner's training set: %w", err)
	}
	if len(bad) > 0 {
		return nil, "", fmt.Errorf("refit: the winner's training set %s: %v", path, bad[0])
	}
	copies := max(1, winner.GoldX)
	for _, ex := range hold {
		for range copies {
			train = append(train, ex)
		}
	}
	nVal := len(sp.base.HeldOut) - len(hold)
	r := winner.Recipe
	fmt.Fprintf(sp.in.cfg.Log, "refit    %s's pipeline with the %d held-back failures added (x%d): %d training examples\n",
		winner.Name, len(hold), copies, len(train))
	c, err := sp.trainAndJudge(ctx, refitStep, r, copies, train, map[Source]int{SrcGold: len(hold) * copies}, refitStep, func(sc Scores) (bool, string) {
		return refitGate(sc, winner.Scores, sp.base.Deployed, sp.in.cfg.Epsilon, nVal)
	})
	if err != nil {
		return nil, "", err
	}
	b := sp.base
	fmt.Fprintf(sp.in.cfg.Log, "  %s: V %s %.4f (winner %.4f), regressions %d/%d (ε %d), previous-version set %.4f (needs %.4f): %s\n",
		c.Name, sp.in.t.Metric, c.Scores.Validation, winner.Scores.Validation, c.Scores.Regressions, len(b.R), sp.in.cfg.Epsilon,
		c.Scores.Previous, b.Deployed.Previous, c.Verdict)
	if !c.Pass {
		return winner, fmt.Sprintf("%s (%s with the %d held-back failures trained on): %s; %s is promoted", c.Name, winner.Name, len(hold), c.Verdict, winner.Name), nil
	}
	return c, fmt.Sprintf("%s is %s with the %d held-back failures trained on; it passed the refit's gate and is promoted instead", c.Name, winner.Name, len(hold)), nil
}

// refitGate judges a refit against the winner it refits: V (nVal validation examples) no
// lower than the winner's by more than one standard error of the difference of two such
// metrics (each taken as a proportion), at most epsilon examples of R broken, and the
// ratchet on the previous version's evaluation set.
func refitGate(c, winner, deployed Scores, epsilon, nVal int) (bool, string) {
	var why []string
	tol := math.Sqrt2 * standardError(winner.Validation, nVal)
	if c.Validation < winner.Validation-tol {
		why = append(why, fmt.Sprintf("validation metric %.4f is below the winner's %.4f by more than the standard error of their difference, %.4f", c.Validation, winner.Validation, tol))
	}
	if c.Regressions > epsilon {
		why = append(why, fmt.Sprintf("%d examples of R became wrong (at most %d allowed)", c.Regressions, epsilon))
	}
	if c.Previous < deployed.Previous {
		why = append(why, fmt.Sprintf("previous version's evaluation set %.4f < %.4f (ratchet)", c.Previous, deployed.Previous))
	}
	if len(why) == 0 {
		return true, "pass"
	}
	return false, "rejected: " + strings.Join(why, "; ")
}

// standardError is the standard error of a proportion p measured on n examples (0 for
// none), with p taken as (k+1)/(n+2) for k = p·n successes (Laplace's rule of
// succession), so that a perfect or null score still allows about one example of noise.
func standardError(p float64, n int) float64 {
	if n <= 0 {
		return 0
	}
	q := (min(1, max(0, p))*float64(n) + 1) / float64(n+2)
	return math.Sqrt(q * (1 - q) / float64(n))
}
