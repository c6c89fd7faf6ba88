// Package agent drives the engine for a task: fine-tuning jobs with evaluation before and
// after, and (see DESIGN.md §5) the production loop built on them.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/sft"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// TuneConfig configures Tune. Zero values take the defaults noted.
type TuneConfig struct {
	Model string // base model folder
	// ModelName is how reports name the model (and the --model argument they suggest);
	// "": Model.
	ModelName string
	Task      *task.Task
	Out       string // run folder
	Device    torch.Device
	// Examples used: at most this many training examples (0: all), drawn with Seed and
	// balanced across labels for classification; at most EvalExamples test examples for
	// the before/after evaluation (0: the whole test split); ValExamples validation
	// examples for the loss during training (0: 200).
	TrainExamples, EvalExamples, ValExamples int
	Epochs                                   int     // 0: 3
	Batch                                    int     // 0: 16
	LR                                       float64 // 0: 5e-3 for LoRA, 1e-3 with Full
	LoRARank                                 int     // 0: 16
	LoRAAlpha                                float64 // 0: 2 x rank
	Full                                     bool    // fine-tune every weight instead of LoRA
	Seed                                     uint64
	// EvalMetric computes the task metric on the validation examples at every evaluation
	// during training (metrics.jsonl, curve) and keeps the best adapter by it in
	// adapter/best.
	EvalMetric bool
	// RandomInit replaces the base model's weights by a seeded random initialisation
	// before training (a from-scratch baseline on the same budget).
	RandomInit bool
	Log        io.Writer                           // stage lines; nil: discard
	Progress   func(training.Progress)             // training progress; may be nil
	EvalTick   func(stage string, done, total int) // evaluation progress; may be nil
}

// TuneResult is what a Tune run measured; it is also written to Out/result.json.
type TuneResult struct {
	Task       string                `json:"task"`
	Model      string                `json:"model"`
	Metric     string                `json:"metric"`
	Before     float64               `json:"before"`
	After      float64               `json:"after"`
	EvalN      int                   `json:"eval_examples"`
	TrainN     int                   `json:"train_examples"`
	Train      *training.TrainResult `json:"training"`
	Adapter    string                `json:"adapter"` // the adapter (or, with Full, model) folder
	Wall       time.Duration         `json:"wall_ns"`
	Confusions []task.Pair           `json:"top_confusions_after,omitempty"`
	// Examples are the first few test examples with the answers before and after.
	Examples      []Shown `json:"examples"`
	before, after *task.Result
}

func (c *TuneConfig) defaults() {
	if c.ModelName == "" {
		c.ModelName = c.Model
	}
	r := c.recipe()
	r.Defaults()
	c.Epochs, c.Batch, c.LR, c.LoRARank, c.LoRAAlpha = r.Epochs, r.Batch, r.LR, r.Rank, r.Alpha
	if c.ValExamples <= 0 {
		c.ValExamples = 200
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Sample draws at most n examples with a seeded shuffle; for classification the draw is
// balanced: labels take turns, so no label has more than one example more than another
// unless it runs out.
func Sample(t *task.Task, exs []task.Example, n int, seed uint64) []task.Example {
	if n <= 0 || n >= len(exs) {
		return exs
	}
	r := rand.New(rand.NewPCG(seed, 0x5a3b1e))
	idx := r.Perm(len(exs))
	if t.Type != task.Classification {
		out := make([]task.Example, n)
		for i := range out {
			out[i] = exs[idx[i]]
		}
		return out
	}
	by := map[string][]int{}
	var order []string
	for _, i := range idx {
		l := exs[i].Label
		if _, ok := by[l]; !ok {
			order = append(order, l)
		}
		by[l] = append(by[l], i)
	}
	var picked []int
	for round := 0; len(picked) < n; round++ {
		added := false
		for _, l := range order {
			if round < len(by[l]) && len(picked) < n {
				picked = append(picked, by[l][round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	sort.Ints(picked) // keep the split's order; the trainer shuffles
	out := make([]task.Example, len(picked))
	for i, j := range picked {
		out[i] = exs[j]
	}
	return out
}

// Sequences tokenizes task examples for training: prompt, then the target completion and
// the end-of-sequence token, with the loss on the completion only.
func Sequences(t *task.Task, tok model.Tokenizer, exs []task.Example, eos, maxLen int) ([]training.Sequence, error) {
	out := make([]training.Sequence, 0, len(exs))
	for i, ex := range exs {
		seq, err := sft.Tokenize(sft.Record{Prompt: t.PromptText(ex.Text), Completion: t.Target(ex), Line: i + 1},
			tok, sft.TokenizeOptions{EOS: eos, MaxLen: maxLen, Truncate: true})
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", ex.ID, err)
		}
		out = append(out, seq)
	}
	return out, nil
}

// Tune fine-tunes a base model on a task and measures the task metric on the test split
// before and after. The run folder gets the adapter (or model), the training run's
// metrics.jsonl, curve.png and checkpoints, before.json and after.json (every
// prediction), result.json and report.md.
func Tune(ctx context.Context, c TuneConfig) (*TuneResult, error) {
	c.defaults()
	start := time.Now()
	t := c.Task
	log := c.Log
	tok, err := tokenizer.Load(filepath.Join(c.Model, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	m, err := model.Load(c.Model, c.Device, torch.Float32)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	gen, err := model.ReadGenerationConfig(c.Model)
	if err != nil {
		return nil, err
	}
	if len(gen.EosTokenIDs) == 0 {
		return nil, fmt.Errorf("%s: no end-of-sequence token in generation_config.json or config.json", c.Model)
	}
	eos := gen.EosTokenIDs[0]
	pad := gen.PadTokenID
	if pad < 0 {
		pad = eos
	}
	if c.RandomInit {
		if err := reinitialize(m, c.Seed); err != nil {
			return nil, err
		}
	}
	train, val, test, err := t.Splits()
	if err != nil {
		return nil, err
	}
	train = Sample(t, train, c.TrainExamples, c.Seed)
	val = Sample(t, val, c.ValExamples, c.Seed+1)
	test = Sample(t, test, c.EvalExamples, c.Seed+2)
	info := m.Info()
	fmt.Fprintf(log, "task     %s (%s, metric %s): %d training, %d validation, %d test examples\n", t.Name, t.Type, t.Metric, len(train), len(val), len(test))
	fmt.Fprintf(log, "model    %s: %s, %s parameters, on %s\n", c.ModelName, info.Architecture, format.Commas(info.Params), m.Device())

	eopts := task.EvalOptions{Batch: 32, EOS: gen.EosTokenIDs, PadID: pad}
	evaluate := func(stage string) (*task.Result, error) {
		o := eopts
		if c.EvalTick != nil {
			o.Progress = func(done, total int) { c.EvalTick(stage, done, total) }
		}
		return t.Evaluate(m, tok, test, o)
	}
	before, err := evaluate("before")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "before   %s %.4f on %d test examples\n", t.Metric, before.Value, before.N)

	adapterDir := filepath.Join(c.Out, OutputDir(c.Full))
	set, tr, err := Train(ctx, m, tok, t, train, val, c.recipe(), TrainEnv{EOS: eos, Pad: pad, Base: c.Model, Out: adapterDir, Log: log, Progress: c.Progress,
		EvalMetric: c.EvalMetric, EvalEOS: gen.EosTokenIDs})
	if err != nil {
		return nil, err
	}
	if set != nil {
		defer set.Close()
	} else if err := model.CopyCompanionFiles(c.Model, adapterDir); err != nil {
		return nil, err
	}
	after, err := evaluate("after")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "after    %s %.4f on %d test examples\n", t.Metric, after.Value, after.N)
	if after.Truncated > 0 {
		fmt.Fprintf(log, "note     %d test inputs were cut to fit the model's %d positions\n", after.Truncated, m.Info().MaxPositions)
	}
	res := &TuneResult{Task: t.Name, Model: c.ModelName, Metric: t.Metric, Before: before.Value, After: after.Value,
		EvalN: len(test), TrainN: len(train), Train: tr, Adapter: adapterDir, Wall: time.Since(start),
		Confusions: after.TopConfusions(10), before: before, after: after}
	for i := 0; i < min(3, len(test)); i++ {
		res.Examples = append(res.Examples, Shown{Text: test[i].Text, Gold: strings.TrimSpace(t.Target(test[i])),
			Before: before.Predictions[i].Output, After: after.Predictions[i].Output})
	}
	for name, v := range map[string]any{"before.json": before, "after.json": after, "result.json": res} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(c.Out, name), append(b, '\n')); err != nil {
			return nil, err
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(c.Out, "report.md"), []byte(res.Report(c))); err != nil {
		return nil, err
	}
	return res, nil
}

// recipe is the training recipe the configuration asks for.
func (c *TuneConfig) recipe() Recipe {
	return Recipe{Epochs: c.Epochs, Batch: c.Batch, LR: c.LR, Rank: c.LoRARank, Alpha: c.LoRAAlpha, Full: c.Full, Seed: c.Seed}
}

// OutputDir is the folder of a Tune run that holds what training made: "adapter" for
// LoRA, "model" (a Hugging Face model folder) for full fine-tuning.
func OutputDir(full bool) string {
	if full {
		return "model"
	}
	return "adapter"
}

// Shown is a test example with the model's answers before and after fine-tuning.
type Shown struct {
	Text   string `json:"text"`
	Gold   string `json:"gold"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Report is the run's summary in Markdown.
func (r *TuneResult) Report(c TuneConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: fine-tuning %s\n\n", r.Task, filepath.Base(r.Model))
	fmt.Fprintf(&b, "| | %s |\n|---|---|\n", r.Metric)
	fmt.Fprintf(&b, "| before (base model) | %.4f |\n| after | **%.4f** |\n\n", r.Before, r.After)
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
	if c.Full {
		fmt.Fprintf(&b, "Fine-tuned model: `%s` (a Hugging Face model folder). Use it:\n\n", r.Adapter)
		fmt.Fprintf(&b, "    pioneer generate --model %s --prompt %q --max-new-tokens 16\n", r.Adapter, c.Task.PromptText(example))
	} else {
		fmt.Fprintf(&b, "Adapter: `%s` (PEFT format). Use it:\n\n", r.Adapter)
		fmt.Fprintf(&b, "    pioneer generate --model %s --adapter %s --prompt %q --max-new-tokens 16\n", r.Model, r.Adapter, c.Task.PromptText(example))
		fmt.Fprintf(&b, "    pioneer export --model %s --adapter %s --out merged/   # a merged Hugging Face folder\n", r.Model, r.Adapter)
	}
	fmt.Fprintf(&b, "\nEvery prediction: before.json, after.json. Training curve: %s.\n", filepath.Join(r.Adapter, "curve.png"))
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
