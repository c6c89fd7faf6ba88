// Package finetune trains a model on a task's examples: the recipe (hyperparameters and
// strategy of a pipeline, docs/DESIGN.md §5's H and S), LoRA or every weight, through the
// training loop (engine/training) with the task's prompts and targets as training
// records (engine/sft). Every agent mode trains through it.
package finetune

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/sft"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/plot"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// Recipe is how a model is trained on a task's examples: the hyperparameters and
// strategy of a pipeline (docs/DESIGN.md §5's H and S; the examples are D).
type Recipe struct {
	Name   string  `json:"name,omitempty"`
	Epochs int     `json:"epochs"`
	Batch  int     `json:"batch"`
	LR     float64 `json:"lr"`
	Rank   int     `json:"lora_rank,omitempty"`
	Alpha  float64 `json:"lora_alpha,omitempty"`
	Full   bool    `json:"full,omitempty"` // every weight instead of LoRA
	Seed   uint64  `json:"seed"`
}

// Validate says what is wrong with a recipe as given (zero values are allowed: Defaults
// fills them).
func (r Recipe) Validate() error {
	switch {
	case r.Epochs < 0:
		return fmt.Errorf("recipe: epochs must be positive (0: 3), got %d", r.Epochs)
	case r.Epochs > MaxEpochs:
		return fmt.Errorf("recipe: %d epochs, more than the %d allowed", r.Epochs, MaxEpochs)
	case r.Batch < 0:
		return fmt.Errorf("recipe: batch must be positive (0: 16), got %d", r.Batch)
	case r.Batch > MaxBatch:
		return fmt.Errorf("recipe: batch of %d, more than the %d allowed", r.Batch, MaxBatch)
	case r.LR < 0 || math.IsNaN(r.LR) || math.IsInf(r.LR, 0):
		return fmt.Errorf("recipe: learning rate must be positive (0: the default), got %v", r.LR)
	case r.LR > 1:
		return fmt.Errorf("recipe: learning rate %v is above 1", r.LR)
	case r.Rank < 0:
		return fmt.Errorf("recipe: LoRA rank must be positive (0: 16), got %d", r.Rank)
	case r.Alpha < 0 || math.IsNaN(r.Alpha) || math.IsInf(r.Alpha, 0):
		return fmt.Errorf("recipe: LoRA alpha must be positive (0: 2 x rank), got %v", r.Alpha)
	}
	return nil
}

// Bounds of a recipe: beyond them a run is a mistake, not a long job.
const (
	MaxEpochs = 1000
	MaxBatch  = 4096
)

// UsualLR is the learning rate to train a base model of params parameters at where no
// rate is given: for LoRA 5e-3 below smallModelParams (the rate the benchmarks train
// pioneer-nano's adapters at, 6.8M parameters) and 1e-3 from there on (the rate
// bench/production and bench/adaptft train SmolLM2-135M-Instruct's adapters at); every
// weight trained, a fifth of that (Defaults' 1e-3 against 5e-3 for the small model; for
// larger ones not measured).
func UsualLR(params int64, full bool) float64 {
	lr := 5e-3
	if params >= smallModelParams {
		lr = 1e-3
	}
	if full {
		lr /= 5
	}
	return lr
}

// smallModelParams: models of fewer parameters take UsualLR's higher rate.
const smallModelParams = 50_000_000

// Defaults fills the recipe's zero values: 3 epochs, batch 16, lr 5e-3 for LoRA and 1e-3
// for every weight, LoRA rank 16 and alpha 2 x rank.
func (r *Recipe) Defaults() {
	if r.Epochs <= 0 {
		r.Epochs = 3
	}
	if r.Batch <= 0 {
		r.Batch = 16
	}
	if r.LR <= 0 {
		r.LR = 5e-3
		if r.Full {
			r.LR = 1e-3
		}
	}
	if r.Rank <= 0 {
		r.Rank = 16
	}
	if r.Alpha <= 0 {
		r.Alpha = 2 * float64(r.Rank)
	}
}

// TrainEnv is what training needs besides the recipe.
type TrainEnv struct {
	EOS, Pad int
	Base     string // the base model folder, recorded in the adapter's config
	Out      string // run folder: the adapter (or model), metrics.jsonl, checkpoints
	Log      io.Writer
	Progress func(training.Progress)
	Resume   bool // continue from Out's latest checkpoint when there is one
	// From is a folder an earlier Train saved (an adapter of the recipe's rank, or a model
	// folder for Full) whose weights training starts from instead of fresh adapters or
	// the model's current weights ("": start fresh). A checkpoint Resume finds wins.
	From string
	// EvalMetric computes the task's metric on val at every evaluation (logged to
	// metrics.jsonl with the loss); it, not the loss, then picks Out/best.
	EvalMetric bool
	EvalEOS    []int // end-of-sequence tokens for that evaluation (default: EOS)
}

// LoRATargets are the projections adapters go on: every linear layer of the Llama and
// GPT-2 families (names that match nothing are ignored).
var LoRATargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "c_attn", "c_proj", "c_fc"}

// Train trains m on the examples (loss on the targets), evaluating the loss on val, and
// saves the result to env.Out. With LoRA the adapter stays attached to m and is returned
// (the caller closes it, which detaches it); with Full, m's own weights change and set
// is nil.
func Train(ctx context.Context, m model.CausalLM, tok model.Tokenizer, t *task.Task, train, val []task.Example, r Recipe, env TrainEnv) (*lora.Set, *training.TrainResult, error) {
	if err := r.Validate(); err != nil {
		return nil, nil, err
	}
	r.Defaults()
	if len(train) == 0 {
		return nil, nil, fmt.Errorf("train: no training examples")
	}
	if env.Log == nil {
		env.Log = io.Discard
	}
	info := m.Info()
	trainSeqs, err := Sequences(t, tok, train, env.EOS, info.MaxPositions)
	if err != nil {
		return nil, nil, err
	}
	valSeqs, err := Sequences(t, tok, val, env.EOS, info.MaxPositions)
	if err != nil {
		return nil, nil, err
	}
	var lm training.LM = training.Full{Model: m}
	var set *lora.Set
	what, strategy := "every weight", "full"
	if !r.Full {
		set, err = lora.Attach(m, lora.Config{R: r.Rank, Alpha: r.Alpha, TargetModules: lora.Targets{Names: LoRATargets}, BaseModel: env.Base}, r.Seed)
		if err != nil {
			return nil, nil, err
		}
		lm = lora.Trainer{Model: m, Set: set}
		what, strategy = set.Summary(), fmt.Sprintf("lora r=%d alpha=%g", r.Rank, r.Alpha)
	}
	if env.From != "" {
		if err := lm.Restore(env.From); err != nil {
			if set != nil {
				set.Close()
			}
			return nil, nil, fmt.Errorf("train: starting from %s: %w", env.From, err)
		}
		what += " from " + env.From
	}
	steps := (r.Epochs*len(trainSeqs) + r.Batch - 1) / r.Batch
	cfg := training.FineTuneConfig{BatchSize: r.Batch, PadID: env.Pad, TrainConfig: training.TrainConfig{
		Steps:    steps,
		Schedule: training.Schedule{Peak: r.LR, Warmup: max(steps/20, 1), MinRatio: 0.1, Kind: "cosine"},
		GradClip: 1, Seed: r.Seed, EvalEvery: max(steps/5, 1), CheckpointEvery: max(steps/5, 1),
		OutDir: env.Out, Resume: env.Resume, Identity: map[string]string{"base": env.Base, "task": t.Name, "strategy": strategy},
	}}
	if env.EvalMetric && len(val) > 0 {
		eosIDs := env.EvalEOS
		if len(eosIDs) == 0 {
			eosIDs = []int{env.EOS}
		}
		cfg.StopOn = t.Metric
		cfg.Metrics = func() (map[string]float64, error) {
			if set != nil {
				set.Training = false // no dropout while evaluating
			}
			res, err := t.Evaluate(ctx, m, tok, val, task.EvalOptions{Batch: 32, EOS: eosIDs, PadID: env.Pad})
			if err != nil {
				return nil, err
			}
			return map[string]float64{t.Metric: res.Value}, nil
		}
	}
	fmt.Fprintf(env.Log, "training %s on %d examples; %d epochs = %d steps of %d, lr %g\n", what, len(train), r.Epochs, steps, r.Batch, r.LR)
	res, err := training.FineTune(ctx, lm, trainSeqs, valSeqs, cfg, env.Progress)
	if err == nil {
		err = plot.TrainingCurve(env.Out)
	}
	if err != nil {
		if set != nil {
			set.Close()
		}
		return nil, nil, err
	}
	if set != nil {
		set.Training = false
	}
	return set, res, nil
}

// Sequences tokenizes task examples for training: prompt, then the target completion and
// the end-of-sequence token, with the loss on the completion only. An example longer
// than maxLen has its input cut (its end dropped, as evaluation cuts it) so that the
// target fits whole, or at least half the context is left to it.
func Sequences(t *task.Task, tok model.Tokenizer, exs []task.Example, eos, maxLen int) ([]training.Sequence, error) {
	out := make([]training.Sequence, 0, len(exs))
	for i, ex := range exs {
		if maxLen > 0 {
			target, err := tok.Encode(t.Target(ex), false)
			if err != nil {
				return nil, fmt.Errorf("example %s: %w", ex.ID, err)
			}
			if ex.Text, err = t.FitText(tok, ex.Text, max(maxLen-len(target)-1, maxLen/2)); err != nil {
				return nil, fmt.Errorf("example %s: %w", ex.ID, err)
			}
		}
		seq, err := sft.Tokenize(Record(t, ex, i+1),
			tok, sft.TokenizeOptions{EOS: eos, MaxLen: maxLen, Truncate: true})
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", ex.ID, err)
		}
		out = append(out, seq)
	}
	return out, nil
}

// Record is a task example as a training record: its prompt and its target completion.
func Record(t *task.Task, ex task.Example, line int) sft.Record {
	return sft.Record{Prompt: t.PromptText(ex.Text), Completion: t.Target(ex), Line: line}
}

// OutputDir is the folder of a tune run that holds what training made: "adapter" for
// LoRA, "model" (a Hugging Face model folder) for full fine-tuning.
func OutputDir(full bool) string {
	if full {
		return "model"
	}
	return "adapter"
}
