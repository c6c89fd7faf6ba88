package production

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/crash"
	"github.com/pioneer-ai/pioneer/internal/fsutil"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/model"
)

// candidate is one trained and gated pipeline.
type candidate struct {
	Name string `json:"name"`
	// Dir is the candidate's folder, relative to the run folder: Dir/adapter holds what
	// it trained (an adapter, or a model folder).
	Dir     string          `json:"dir"`
	Recipe  finetune.Recipe `json:"recipe"`
	Train   int             `json:"train_examples"`
	Tokens  int64           `json:"train_tokens"`
	Scores  Scores          `json:"scores"`
	Pass    bool            `json:"pass"`
	Verdict string          `json:"verdict"`
	// Files are the SHA-256 of the trained files as they were scored: what is promoted
	// later must be these bytes.
	Files map[string]string `json:"files,omitempty"`
}

// trained is the folder of what the candidate trained, under the run folder runDir.
func (c *candidate) trained(runDir string) string { return filepath.Join(runDir, c.Dir, "adapter") }

// candidate trains recipe r from the base model on the parent's data and the curriculum
// (its gold failures goldX times) and gates it; a candidate the lineage already holds is
// not trained again (an interrupted one continues from its checkpoint).
func (sp *space) candidate(ctx context.Context, round string, r finetune.Recipe, goldX int, cur *Curriculum) (*candidate, error) {
	train := append([]task.Example(nil), sp.in.parent...)
	for _, it := range cur.Items {
		train = append(train, it.Example)
		for k := 1; k < goldX && it.Source == SrcGold; k++ {
			train = append(train, it.Example)
		}
	}
	return sp.trainCandidate(ctx, round, r, train, nil, map[string]any{"parent_examples": len(sp.in.parent), "curriculum": cur.Mix}, nil)
}

// trainCandidate trains recipe r on train, from the base model or, with from, from what
// that candidate trained, and gates it; carry (nil: train) is the training set it keeps
// for a version promoted from it, and about (the training set's parts) goes into the
// lineage's record of the recipe. A candidate the lineage already holds is not trained
// again (an interrupted one continues from its checkpoint).
func (sp *space) trainCandidate(ctx context.Context, round string, r finetune.Recipe, train, carry []task.Example, about map[string]any, from *candidate) (_ *candidate, err error) {
	in, lin := sp.in, sp.run.Lineage
	key := round + "/" + r.Name
	var c candidate
	if ok, err := lin.Get(key+"/gate", &c); err != nil || ok {
		in.budget.Use(c.Tokens)
		return &c, err
	}
	c = candidate{Name: key, Dir: filepath.Join(round, r.Name), Recipe: r, Train: len(train)}
	rec := map[string]any{"candidate": key, "recipe": r, "train_examples": len(train)}
	for k, v := range about {
		rec[k] = v
	}
	fromDir := ""
	if from != nil {
		// What it starts from must be the bytes that were scored.
		fromDir = from.trained(sp.run.Dir)
		sums, err := versions.FileSums(fromDir)
		if err != nil {
			return nil, fmt.Errorf("candidate %s: %w", key, err)
		}
		for name, sum := range from.Files {
			if sums[name] != sum {
				return nil, fmt.Errorf("candidate %s: %s of %s changed since it was scored", key, name, from.Name)
			}
		}
		rec["from"] = from.Name
	}
	if err := lin.Append(key+"/recipe", "candidate_recipe", rec); err != nil {
		return nil, err
	}
	out := c.trained(sp.run.Dir)
	progress := func(p training.Progress) {
		if p.Step == 2 {
			crash.Point("candidate:training")
		}
		if in.cfg.Progress != nil {
			in.cfg.Progress(p)
		}
	}
	// Training every weight changes the base model's: the next candidate must start from
	// the base weights, so they are put back after scoring, or on any way out before it.
	restored := !r.Full
	restore := func() error {
		if restored {
			return nil
		}
		restored = true
		return in.swap(in.base.Dir)
	}
	defer func() {
		if rerr := restore(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	set, tr, err := finetune.Train(ctx, in.base.LM, in.base.Tokenizer, in.t, train, in.t.Sample(in.val, 100, 7), r, finetune.TrainEnv{
		EOS: in.base.EOS[0], Pad: in.base.Pad, Base: in.cfg.Base, Out: out, Log: in.cfg.Log, Progress: progress, Resume: true, From: fromDir})
	if err != nil {
		return nil, fmt.Errorf("candidate %s: %w", key, err)
	}
	c.Tokens = tr.Tokens
	in.budget.Use(c.Tokens)
	if r.Full {
		if err := model.CopyCompanionFiles(in.base.Dir, out); err != nil {
			return nil, err
		}
	}
	// The training set goes with what it trained: a version promoted from it is the
	// parent of the next round (Round), its data replayed there.
	if carry == nil {
		carry = train
	}
	if err := fsutil.WriteJSONL(filepath.Join(out, versions.TrainingSetFile), carry); err != nil {
		return nil, fmt.Errorf("candidate %s: %w", key, err)
	}
	crash.Point("candidate:scoring")
	sc, res, err := in.score(ctx, sp.base.HeldOut, sp.base.R, sp.base.Previous, len(sp.tg.hold))
	if set != nil {
		set.Close()
	}
	if rerr := restore(); err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(sp.run.Dir, c.Dir, "heldout.json"), res); err != nil {
		return nil, err
	}
	if c.Files, err = versions.FileSums(out); err != nil {
		return nil, fmt.Errorf("candidate %s: %w", key, err)
	}
	c.Scores = sc
	c.Pass, c.Verdict = gate(sc, sp.base.Deployed, in.cfg.Epsilon)
	if err := lin.Append(key+"/gate", "gate", c); err != nil {
		return nil, err
	}
	return &c, nil
}

// logCandidate prints a gated candidate's scores and verdict; how says where it came
// from ("" for none).
func (sp *space) logCandidate(c *candidate, how string) {
	if how != "" {
		how = " (" + how + ")"
	}
	b := sp.base
	fmt.Fprintf(sp.in.cfg.Log, "  %s%s: %s %.4f (deployed %.4f), regressions %d/%d (ε %d), previous-version set %.4f (needs %.4f): %s\n",
		c.Name, how, sp.in.t.Metric, c.Scores.HeldOut, b.Deployed.HeldOut, c.Scores.Regressions, len(b.R), sp.in.cfg.Epsilon,
		c.Scores.Previous, b.Deployed.Previous, c.Verdict)
}

// gate is the regression gate: the candidate must improve the held-out metric, break at
// most epsilon examples of R, and do at least as well as the deployed version on that
// version's own evaluation set (the ratchet).
func gate(c, deployed Scores, epsilon int) (bool, string) {
	var why []string
	if !(c.HeldOut > deployed.HeldOut) {
		why = append(why, fmt.Sprintf("held-out metric %.4f does not improve on %.4f", c.HeldOut, deployed.HeldOut))
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
