// Package judge is how the production benchmarks (bench/production, bench/adaptft) judge
// what they run: a model's metric on a test set and the examples of R it breaks, and what
// an agent's run did with the log lines the benchmark poisoned — a truth the agent never
// sees.
package judge

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/model"
)

// Admission is what triage and the curricula of one agent run did with the poisoned
// log lines. Admitted = trained on: a poisoned line in any curriculum, as a gold failure,
// its variant or replayed traffic (a poisoned line the deployed model happened to answer
// as logged is traffic). Triage is the first filter, confirmation on probes the second.
type Admission struct {
	PassedTriage int // poisoned lines triage did not call poison
	FalseAlarms  int // genuine failures triage called poison
	Genuine      int // genuine failures triage read
	Admitted     int // poisoned lines trained on
}

// Admitted reads an agent's run folder and counts what became of the poisoned lines
// (their ids in planted).
func Admitted(runDir string, planted map[string]bool) (Admission, error) {
	var a Admission
	verdicts, err := ReadJSONL[triage.Verdict](filepath.Join(runDir, "triage.jsonl"))
	if err != nil {
		return a, err
	}
	for _, v := range verdicts {
		switch {
		case planted[v.ID] && v.Class != triage.Poison:
			a.PassedTriage++
		case !planted[v.ID]:
			a.Genuine++
			if v.Class == triage.Poison {
				a.FalseAlarms++
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
		items, err := ReadJSONL[production.Item](c)
		if err != nil {
			return a, err
		}
		for _, it := range items {
			trainedOn[it.Example.ID] = true
		}
	}
	for id := range planted {
		if trainedOn[id] {
			a.Admitted++
		}
	}
	return a, nil
}

// ReadJSONL reads a JSONL file an agent or a generator wrote, one T per line.
func ReadJSONL[T any](path string) ([]T, error) {
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

// Score is a model's metric on the test examples and the number of examples of r it
// gets wrong.
func Score(t *task.Task, m model.CausalLM, tok model.Tokenizer, test, r []task.Example, o task.EvalOptions) (float64, int, error) {
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

// FailureLine is a line of a failure log (agent/triage's format).
type FailureLine struct {
	ID       string `json:"id"`
	Input    string `json:"input"`
	Output   string `json:"output"`
	Expected string `json:"expected"`
}

// Split splits examples by a model's results on them (res, in their order): those it
// gets wrong as failure-log lines with its output (and as the examples they came from),
// the others as R.
func Split(t *task.Task, exs []task.Example, res *task.Result) (fails []FailureLine, wrong, right []task.Example) {
	for i, ex := range exs {
		p := res.Predictions[i]
		if p.Correct {
			right = append(right, ex)
			continue
		}
		fails = append(fails, FailureLine{ID: ex.ID, Input: ex.Text, Output: p.Output, Expected: strings.TrimSpace(t.Target(ex))})
		wrong = append(wrong, ex)
	}
	return fails, wrong, right
}
