package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/model"
)

// triageFigures runs the agent on the deployment's log up to its first curriculum (it
// is stopped when the first candidate starts training) and prints what triage and the
// curriculum did with the poisoned lines.
func triageFigures(cfg production.Config, planted map[string]bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Progress = func(training.Progress) { cancel() }
	_, err := production.Run(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	a, err := admission(cfg.Out, planted)
	if err != nil {
		return err
	}
	fmt.Printf("poison planted %d: %d passed triage, %d reached the first curriculum; triage turned away %d of %d genuine failures\n",
		len(planted), a.passedTriage, a.admitted, a.falseAlarms, a.genuine)
	return nil
}

// admitted counts, for a run folder, what triage and the curricula did with the
// poisoned log lines. Admitted = trained on: a poisoned line used as a gold failure (or
// its variant) in any curriculum. Triage is the first filter, confirmation on probes the
// second.
type admitted struct{ passedTriage, falseAlarms, genuine, admitted int }

func admission(runDir string, planted map[string]bool) (admitted, error) {
	var a admitted
	verdicts, err := readLines[triage.Verdict](filepath.Join(runDir, "triage.jsonl"))
	if err != nil {
		return a, err
	}
	for _, v := range verdicts {
		switch {
		case planted[v.ID] && v.Class != triage.Poison:
			a.passedTriage++
		case !planted[v.ID]:
			a.genuine++
			if v.Class == triage.Poison {
				a.falseAlarms++
			}
		}
	}
	trainedOn := map[string]bool{}
	curricula, err := filepath.Glob(filepath.Join(runDir, "iter*", "curriculum.jsonl"))
	if err != nil {
		return a, err
	}
	searched, err := filepath.Glob(filepath.Join(runDir, "search", "*", "curriculum.jsonl"))
	if err != nil {
		return a, err
	}
	for _, c := range append(curricula, searched...) {
		items, err := readLines[production.Item](c)
		if err != nil {
			return a, err
		}
		for _, it := range items {
			if it.Source == production.SrcGold || it.Source == production.SrcVariant {
				trainedOn[it.Example.ID] = true
			}
		}
	}
	for id := range planted {
		if trainedOn[id] {
			a.admitted++
		}
	}
	return a, nil
}

// readLines reads a JSONL file the agent wrote.
func readLines[T any](path string) ([]T, error) {
	var out []T
	err := jsonl.ReadFile(path, 0, func(l jsonl.Line) error {
		var v T
		if err := json.Unmarshal(l.Bytes, &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, l.N, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// evalWith scores a model on the test examples and counts the examples of r it gets wrong.
func evalWith(t *task.Task, m model.CausalLM, tok model.Tokenizer, test, r []task.Example, o task.EvalOptions) (float64, int, error) {
	res, err := t.Evaluate(context.Background(), m, tok, test, o)
	if err != nil {
		return 0, 0, err
	}
	if len(r) == 0 {
		return res.Value, 0, nil
	}
	rr, err := t.Evaluate(context.Background(), m, tok, r, o)
	if err != nil {
		return 0, 0, err
	}
	broken := 0
	for _, p := range rr.Predictions {
		if !p.Correct {
			broken++
		}
	}
	return res.Value, broken, nil
}
