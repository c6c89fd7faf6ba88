package coldstart

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Freeze makes the task folder dir from the pool: the frozen evaluation set drawn first
// (FreezeEval), a dev split of the rest (HoldDev, 200 at most), a generation task's
// answer budget from its training answers, and the folder written (WriteTask). It
// returns the evaluation set, the training and the dev examples.
func Freeze(dir string, p *Plan, pool []task.Example, evalSize int, seed uint64) (*EvalSet, []task.Example, []task.Example, error) {
	es, train, err := FreezeEval(p.Task.Type, p.Task.Labels, pool, evalSize, seed)
	if err != nil {
		return nil, nil, nil, err
	}
	dev, train := HoldDev(train, 200, seed)
	if p.Task.Type == task.Generation {
		p.Task.MaxNewTokens = answerBudget(train, p.Task.MultiLine)
	}
	if _, err := WriteTask(dir, p, train, dev, es); err != nil {
		return nil, nil, nil, err
	}
	return es, train, dev, nil
}

// WriteTask writes the planned task into dir as a Pioneer task folder (agent/task):
// task.yaml, train.jsonl (the pool's training part), validation.jsonl (dev: held out of
// training for its loss, and what production mode's gate scores) and eval.jsonl, the
// frozen evaluation set, as its test split: the score, never trained or selected on. It
// returns the loaded task, so that what was written is known to load.
func WriteTask(dir string, p *Plan, train, dev []task.Example, eval *EvalSet) (*task.Task, error) {
	if len(dev) == 0 {
		return nil, fmt.Errorf("coldstart: no dev examples for the validation split")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("coldstart: %w", err)
	}
	spec := struct {
		TaskSpec `yaml:",inline"`
		Data     map[string]string `yaml:"data"`
	}{p.Task, map[string]string{"train": "train.jsonl", "validation": "validation.jsonl", "test": "eval.jsonl"}}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("coldstart: task.yaml: %w", err)
	}
	for name, exs := range map[string][]task.Example{"train.jsonl": train, "validation.jsonl": dev, "eval.jsonl": eval.Examples} {
		if err := writeJSONLines(filepath.Join(dir, name), exs); err != nil {
			return nil, err
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "task.yaml"), b); err != nil {
		return nil, fmt.Errorf("coldstart: %w", err)
	}
	t, err := task.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("coldstart: the task written does not load: %w", err)
	}
	return t, nil
}

// HoldDev takes a dev split of n examples (at most a tenth of train, at least one) out
// of the training examples, drawn with seed.
func HoldDev(train []task.Example, n int, seed uint64) (dev, rest []task.Example) {
	n = max(1, min(n, len(train)/10))
	if len(train) < 2 {
		return nil, train
	}
	r := rand.New(rand.NewPCG(seed, 0xde5))
	take := map[int]bool{}
	for _, i := range r.Perm(len(train))[:n] {
		take[i] = true
	}
	for i, ex := range train {
		if take[i] {
			dev = append(dev, ex)
		} else {
			rest = append(rest, ex)
		}
	}
	return dev, rest
}

// writeJSONLines writes examples as JSONL, atomically.
func writeJSONLines(path string, exs []task.Example) error {
	if err := fsutil.WriteJSONL(path, exs); err != nil {
		return fmt.Errorf("coldstart: %w", err)
	}
	return nil
}
