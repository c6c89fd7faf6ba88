package production

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/internal/crash"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// baseline is the deployed model's measurements, recorded once.
type baseline struct {
	Deployed Scores         `json:"deployed"`
	HeldOut  []task.Example `json:"heldout"` // V ∪ held-back failures
	R        []task.Example `json:"r"`
	Previous []task.Example `json:"previous_eval"` // the current version's evaluation set
	RNote    string         `json:"r_note"`
}

// measureBaseline scores the deployed version on the held-out set (the validation
// examples and the held-back failures) and on its own evaluation set (the ratchet), and
// finds R: the traffic it gets right, or without traffic the held-out validation examples
// it gets right. deployed_heldout.json gets its every prediction.
func (in *inputs) measureBaseline(ctx context.Context, runDir string, tg *triaged) (baseline, error) {
	b := baseline{HeldOut: append(append([]task.Example(nil), in.val...), tg.hold...)}
	cur, err := in.vs.Current()
	if err != nil {
		return b, err
	}
	var prev []task.Example
	ok, err := in.vs.EvalSet(cur, &prev)
	if err != nil {
		return b, err
	}
	if !ok {
		prev = in.val // v0: the task's validation examples stand in
	}
	b.Previous = prev
	err = in.withDeployed(func() error {
		crash.Point("baseline:scoring")
		if len(b.HeldOut) == 0 || len(prev) == 0 {
			return fmt.Errorf("baseline: %d held-out examples and %d of the deployed version's evaluation set; both are needed", len(b.HeldOut), len(prev))
		}
		// One evaluation for the held-out set, the ratchet's set and the traffic: an
		// input in several (v0's evaluation set is the held-out set's core) is run once.
		sets, err := in.t.EvaluateSets(ctx, in.base.LM, in.base.Tokenizer, [][]task.Example{b.HeldOut, prev, in.traffic}, in.eopts)
		if err != nil {
			return err
		}
		res := sets[0]
		if err := writeJSON(filepath.Join(runDir, "deployed_heldout.json"), res); err != nil {
			return err
		}
		b.Deployed = scoresOf(res, nil, sets[1], nil, len(tg.hold))
		if in.traffic != nil {
			for i, ex := range in.traffic {
				if sets[2].Predictions[i].Correct {
					b.R = append(b.R, ex)
				}
			}
			b.RNote = fmt.Sprintf("traffic %s: %d examples, %d bad lines, %d the deployed model gets right", in.cfg.Traffic, len(in.traffic), in.trafficBad, len(b.R))
			return nil
		}
		for i, ex := range in.val {
			if res.Predictions[i].Correct {
				b.R = append(b.R, ex)
			}
		}
		b.RNote = fmt.Sprintf("no traffic given: R = the %d held-out validation examples the deployed model gets right", len(b.R))
		return nil
	})
	return b, err
}

// score evaluates the model as it stands on the held-out set (whose last nHold examples
// are held-back failures), R and the previous version's evaluation set, in one
// evaluation (an input in several sets is run once).
func (in *inputs) score(ctx context.Context, heldout, r, prev []task.Example, nHold int) (Scores, *task.Result, error) {
	if len(heldout) == 0 || len(prev) == 0 {
		return Scores{}, nil, fmt.Errorf("score: %d held-out examples and %d of the previous version's evaluation set; both are needed", len(heldout), len(prev))
	}
	sets, err := in.t.EvaluateSets(ctx, in.base.LM, in.base.Tokenizer, [][]task.Example{heldout, r, prev}, in.eopts)
	if err != nil {
		return Scores{}, nil, err
	}
	return scoresOf(sets[0], sets[1], sets[2], r, nHold), sets[0], nil
}

// scoresOf makes Scores of the results on the held-out set (its last nHold examples the
// held-back failures), on R (nil: not scored) and on the previous version's evaluation set.
func scoresOf(heldout, onR, prev *task.Result, r []task.Example, nHold int) Scores {
	sc := Scores{HeldOut: heldout.Value, Previous: prev.Value}
	if nHold > 0 {
		sc.Failures = meanScore(heldout.Predictions[len(heldout.Predictions)-nHold:])
	}
	if onR != nil {
		for i, p := range onR.Predictions {
			if !p.Correct {
				sc.Regressions++
				sc.Broken = append(sc.Broken, r[i].ID)
			}
		}
	}
	return sc
}

func meanScore(ps []task.Prediction) float64 {
	if len(ps) == 0 {
		return math.NaN()
	}
	var s float64
	for _, p := range ps {
		s += p.Score
	}
	return s / float64(len(ps))
}
