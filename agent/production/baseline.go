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
		sc, res, err := in.score(ctx, b.HeldOut, nil, prev, len(tg.hold))
		if err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(runDir, "deployed_heldout.json"), res); err != nil {
			return err
		}
		b.Deployed = sc
		if in.traffic != nil {
			r, err := in.t.Evaluate(ctx, in.base.LM, in.base.Tokenizer, in.traffic, in.eopts)
			if err != nil {
				return err
			}
			for i, ex := range in.traffic {
				if r.Predictions[i].Correct {
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
// are held-back failures), R and the previous version's evaluation set.
func (in *inputs) score(ctx context.Context, heldout, r, prev []task.Example, nHold int) (Scores, *task.Result, error) {
	var sc Scores
	m, tok := in.base.LM, in.base.Tokenizer
	res, err := in.t.Evaluate(ctx, m, tok, heldout, in.eopts)
	if err != nil {
		return sc, nil, err
	}
	sc.HeldOut = res.Value
	if nHold > 0 {
		sc.Failures = meanScore(res.Predictions[len(heldout)-nHold:])
	}
	if len(r) > 0 {
		rr, err := in.t.Evaluate(ctx, m, tok, r, in.eopts)
		if err != nil {
			return sc, nil, err
		}
		for i, p := range rr.Predictions {
			if !p.Correct {
				sc.Regressions++
				sc.Broken = append(sc.Broken, r[i].ID)
			}
		}
	}
	pr, err := in.t.Evaluate(ctx, m, tok, prev, in.eopts)
	if err != nil {
		return sc, nil, err
	}
	sc.Previous = pr.Value
	return sc, res, nil
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
