package plot

import (
	"encoding/json"
	"fmt"
	"image/color"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// TrainingCurve draws the training and evaluation loss of a training run folder's
// metrics.jsonl (engine/training writes it: one JSON object per logged step with "step",
// "loss" and, when the step evaluated, "eval_loss") as curve.png in the same folder. A
// run with no logged loss draws nothing.
func TrainingCurve(runDir string) error {
	path := filepath.Join(runDir, "metrics.jsonl")
	train := Series{Name: "training loss", Color: color.RGBA{200, 60, 40, 255}}
	eval := Series{Name: "evaluation loss", Color: color.RGBA{30, 90, 200, 255}}
	err := jsonl.ReadFile(path, 0, func(l jsonl.Line) error {
		var m struct {
			Step int      `json:"step"`
			Loss *float64 `json:"loss"`
			Eval *float64 `json:"eval_loss"`
		}
		if err := json.Unmarshal(l.Bytes, &m); err != nil {
			return fmt.Errorf("%s:%d: %w", path, l.N, err)
		}
		if m.Loss != nil {
			train.X, train.Y = append(train.X, float64(m.Step)), append(train.Y, *m.Loss)
		}
		if m.Eval != nil {
			eval.X, eval.Y = append(eval.X, float64(m.Step)), append(eval.Y, *m.Eval)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(train.X) == 0 {
		return nil
	}
	series := []Series{train}
	if len(eval.X) > 0 {
		series = append(series, eval)
	}
	return Lines(filepath.Join(runDir, "curve.png"), "loss (nats per target token)", "step", series)
}
