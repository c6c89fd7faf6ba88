// Package tune is `pioneer tune`, the main job: fine-tune a base model on a task and
// measure the task's metric on its test split before and after, with every prediction,
// a report and the adapter (or model) ready to use.
package tune

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	// Model is the base model: a Hugging Face folder or a bundled model's name (as
	// reports and the commands they suggest name it).
	Model  string
	Task   *task.Task
	Out    string // run folder
	Device torch.Device
	// Examples used: at most this many training examples (0: all), drawn with the recipe's
	// seed and balanced across labels for classification; at most EvalExamples test
	// examples for the before/after evaluation (0: the whole test split); ValExamples
	// validation examples for the loss during training (0: 200).
	TrainExamples, EvalExamples, ValExamples int
	// Recipe is how the model is trained (finetune.Recipe's defaults for zero fields).
	Recipe finetune.Recipe
	// EvalMetric computes the task metric on the validation examples at every evaluation
	// during training (metrics.jsonl, curve) and keeps the best adapter by it in
	// adapter/best.
	EvalMetric bool
	// RandomInit replaces the base model's weights by a seeded random initialisation
	// before training (a from-scratch baseline on the same budget).
	RandomInit bool
	// SkipBefore skips the evaluation before training (Result.Before is then 0 and
	// BeforeSkipped true): for a series of runs that share one base model and test set.
	SkipBefore bool
	Log        io.Writer                           // stage lines; nil: discard
	Progress   func(training.Progress)             // training progress; may be nil
	EvalTick   func(stage string, done, total int) // evaluation progress; may be nil
}

// Result is what a run measured; it is also written to Out/result.json.
type Result struct {
	Task    string                `json:"task"`
	Model   string                `json:"model"`
	Metric  string                `json:"metric"`
	Before  float64               `json:"before"`
	After   float64               `json:"after"`
	EvalN   int                   `json:"eval_examples"`
	TrainN  int                   `json:"train_examples"`
	Train   *training.TrainResult `json:"training"`
	Adapter string                `json:"adapter"` // the adapter (or, with Full, model) folder
	Wall    time.Duration         `json:"wall_ns"`
	// BeforeWall and AfterWall are the two test-set evaluations' wall times.
	BeforeWall    time.Duration `json:"before_eval_wall_ns"`
	BeforeSkipped bool          `json:"before_skipped,omitempty"`
	AfterWall     time.Duration `json:"after_eval_wall_ns"`
	Confusions    []task.Pair   `json:"top_confusions_after,omitempty"`
	// Examples are the first few test examples with the answers before and after.
	Examples      []Shown `json:"examples"`
	before, after *task.Result
}

func (c *Config) validate() error {
	switch {
	case c.Task == nil:
		return fmt.Errorf("tune: no task")
	case c.Out == "":
		return fmt.Errorf("tune: no run folder")
	case c.TrainExamples < 0 || c.EvalExamples < 0 || c.ValExamples < 0:
		return fmt.Errorf("tune: example counts must not be negative (0: all), got %d, %d and %d", c.TrainExamples, c.EvalExamples, c.ValExamples)
	}
	return c.Recipe.Validate()
}

// Run fine-tunes a base model on a task and measures the task metric on the test split
// before and after. The run folder gets the adapter (or model), the training run's
// metrics.jsonl, curve.png and checkpoints, before.json and after.json (every
// prediction), result.json and report.md.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.Recipe.Defaults()
	if c.ValExamples == 0 {
		c.ValExamples = 200
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	start := time.Now()
	t := c.Task
	log := c.Log
	p, err := model.Open(c.Model, model.OpenOptions{Device: c.Device})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if len(p.EOS) == 0 {
		return nil, fmt.Errorf("%s: no end-of-sequence token in generation_config.json or config.json", p.Dir)
	}
	m, tok := p.LM, p.Tokenizer
	if c.RandomInit {
		if err := reinitialize(m, c.Recipe.Seed); err != nil {
			return nil, err
		}
	}
	train, val, test, err := t.Splits()
	if err != nil {
		return nil, err
	}
	seed := c.Recipe.Seed
	train = t.Sample(train, c.TrainExamples, seed)
	val = t.Sample(val, c.ValExamples, seed+1)
	test = t.Sample(test, c.EvalExamples, seed+2)
	info := m.Info()
	fmt.Fprintf(log, "task     %s (%s, metric %s): %d training, %d validation, %d test examples\n", t.Name, t.Type, t.Metric, len(train), len(val), len(test))
	fmt.Fprintf(log, "model    %s: %s, %s parameters, on %s\n", c.Model, info.Architecture, format.Commas(info.Params), m.Device())

	eopts := task.EvalOptions{Batch: 32, EOS: p.EOS, PadID: p.Pad}
	evaluate := func(stage string) (*task.Result, error) {
		o := eopts
		if c.EvalTick != nil {
			o.Progress = func(done, total int) { c.EvalTick(stage, done, total) }
		}
		return t.Evaluate(ctx, m, tok, test, o)
	}
	var before *task.Result
	var beforeWall time.Duration
	if !c.SkipBefore {
		evalStart := time.Now()
		if before, err = evaluate("before"); err != nil {
			return nil, err
		}
		beforeWall = time.Since(evalStart)
		fmt.Fprintf(log, "before   %s %.4f on %d test examples\n", t.Metric, before.Value, before.N)
	}

	adapterDir := filepath.Join(c.Out, finetune.OutputDir(c.Recipe.Full))
	set, tr, err := finetune.Train(ctx, m, tok, t, train, val, c.Recipe, finetune.TrainEnv{EOS: p.FirstEOS(), Pad: p.Pad, Base: p.Dir,
		Out: adapterDir, Log: log, Progress: c.Progress, EvalMetric: c.EvalMetric, EvalEOS: p.EOS})
	if err != nil {
		return nil, err
	}
	if set != nil {
		defer set.Close()
	} else if err := model.CopyCompanionFiles(p.Dir, adapterDir); err != nil {
		return nil, err
	}
	evalStart := time.Now()
	after, err := evaluate("after")
	afterWall := time.Since(evalStart)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "after    %s %.4f on %d test examples\n", t.Metric, after.Value, after.N)
	if after.Truncated > 0 {
		fmt.Fprintf(log, "note     %d test inputs were cut to fit the model's %d positions\n", after.Truncated, m.Info().MaxPositions)
	}
	res := &Result{Task: t.Name, Model: c.Model, Metric: t.Metric, After: after.Value,
		EvalN: len(test), TrainN: len(train), Train: tr, Adapter: adapterDir, Wall: time.Since(start),
		BeforeWall: beforeWall, BeforeSkipped: before == nil, AfterWall: afterWall,
		Confusions: after.TopConfusions(10), before: before, after: after}
	if before != nil {
		res.Before = before.Value
	}
	for i := 0; i < min(3, len(test)); i++ {
		shown := Shown{Text: test[i].Text, Gold: strings.TrimSpace(t.Target(test[i])), After: after.Predictions[i].Output}
		if before != nil {
			shown.Before = before.Predictions[i].Output
		}
		res.Examples = append(res.Examples, shown)
	}
	files := map[string]any{"after.json": after, "result.json": res}
	if before != nil {
		files["before.json"] = before
	}
	for name, v := range files {
		if err := fsutil.WriteJSON(filepath.Join(c.Out, name), v); err != nil {
			return nil, err
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(c.Out, "report.md"), []byte(res.Report(c))); err != nil {
		return nil, err
	}
	return res, nil
}

// Shown is a test example with the model's answers before and after fine-tuning.
type Shown struct {
	Text   string `json:"text"`
	Gold   string `json:"gold"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Report is the run's summary in Markdown.
func (r *Result) Report(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: fine-tuning %s\n\n", r.Task, filepath.Base(r.Model))
	fmt.Fprintf(&b, "| | %s |\n|---|---|\n", r.Metric)
	before := "not measured"
	if !r.BeforeSkipped {
		before = fmt.Sprintf("%.4f", r.Before)
	}
	fmt.Fprintf(&b, "| before (base model) | %s |\n| after | **%.4f** |\n\n", before, r.After)
	fmt.Fprintf(&b, "Test examples: %d. Training examples: %d, %d steps, %s target tokens, %s (%.0f tokens/s); loss %.3f → %.3f, validation loss %.3f.\n\n",
		r.EvalN, r.TrainN, r.Train.Steps, format.Commas(r.Train.Tokens), r.Train.Wall.Round(time.Second), r.Train.TokensPerSec,
		r.Train.FirstLoss, r.Train.FinalLoss, r.Train.EvalLoss)
	if r.after != nil && r.after.Truncated > 0 {
		fmt.Fprintf(&b, "%d test inputs were longer than the model's context and were cut to fit (their end dropped).\n\n", r.after.Truncated)
	}
	if len(r.Examples) > 0 {
		b.WriteString("| test input | expected | before | after |\n|---|---|---|---|\n")
		for _, e := range r.Examples {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", e.Text, e.Gold, e.Before, e.After)
		}
		b.WriteString("\n")
	}
	if len(r.Confusions) > 0 {
		b.WriteString("Most frequent mistakes after training (gold → predicted, count):\n\n")
		for _, p := range r.Confusions {
			fmt.Fprintf(&b, "- %s → %s: %d\n", p.Gold, p.Predicted, p.Count)
		}
		b.WriteString("\n")
	}
	example := "..."
	if len(r.Examples) > 0 {
		example = r.Examples[0].Text
	}
	if c.Recipe.Full {
		fmt.Fprintf(&b, "Fine-tuned model: `%s` (a Hugging Face model folder). Use it:\n\n", r.Adapter)
		fmt.Fprintf(&b, "    pioneer generate --model %s --prompt %q --max-new-tokens 16\n", r.Adapter, c.Task.PromptText(example))
	} else {
		fmt.Fprintf(&b, "Adapter: `%s` (PEFT format). Use it:\n\n", r.Adapter)
		fmt.Fprintf(&b, "    pioneer generate --model %s --adapter %s --prompt %q --max-new-tokens 16\n", r.Model, r.Adapter, c.Task.PromptText(example))
		fmt.Fprintf(&b, "    pioneer export --model %s --adapter %s --out merged/   # a merged Hugging Face folder\n", r.Model, r.Adapter)
	}
	files := "before.json, after.json"
	if r.BeforeSkipped {
		files = "after.json"
	}
	fmt.Fprintf(&b, "\nEvery prediction: %s. Training curve: %s.\n", files, filepath.Join(r.Adapter, "curve.png"))
	return b.String()
}

// reinitialize draws every weight afresh (normal, std 0.02; norms at 1, biases at 0), as a model
// trained from scratch would start.
func reinitialize(m model.CausalLM, seed uint64) error {
	return torch.NoGrad(func() error {
		g, err := torch.NewGenerator(seed, torch.CPU)
		if err != nil {
			return err
		}
		defer g.Close()
		params := m.Parameters()
		for i, name := range m.Names() {
			p := params[i]
			s := torch.NewScope()
			var v *torch.Tensor
			if strings.HasSuffix(name, ".bias") {
				v = s.Zeros(p.Shape(), p.DType(), p.Device())
			} else if strings.Contains(name, "norm") || strings.Contains(name, "ln_") {
				v = s.Ones(p.Shape(), p.DType(), p.Device())
			} else {
				v = s.To(s.MulScalar(s.Randn(p.Shape(), torch.Float32, torch.CPU, g), 0.02), p.DType(), p.Device())
			}
			err := p.CopyFrom(v)
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return fmt.Errorf("reinitialise %s: %w", name, err)
			}
		}
		return nil
	})
}
