package coldstart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// WriteTask writes the planned task into dir as a Pioneer task folder (agent/task):
// task.yaml, train.jsonl (the pool's training part) and eval.jsonl (the frozen
// evaluation set) as its validation split, which is what production mode holds out
// for its gate. The folder has no test split: a benchmark's test data is never the
// agent's. It returns the loaded task, so that what was written is known to load.
func WriteTask(dir string, p *Plan, train []task.Example, eval *EvalSet) (*task.Task, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("coldstart: %w", err)
	}
	spec := struct {
		TaskSpec `yaml:",inline"`
		Data     map[string]string `yaml:"data"`
	}{p.Task, map[string]string{"train": "train.jsonl", "validation": "eval.jsonl"}}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("coldstart: task.yaml: %w", err)
	}
	for name, exs := range map[string][]task.Example{"train.jsonl": train, "eval.jsonl": eval.Examples} {
		var buf []byte
		for _, ex := range exs {
			line, err := json.Marshal(ex)
			if err != nil {
				return nil, fmt.Errorf("coldstart: %s: %w", name, err)
			}
			buf = append(append(buf, line...), '\n')
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), buf); err != nil {
			return nil, fmt.Errorf("coldstart: %w", err)
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
