// Package training is Pioneer's training loop over models built on engine/torch: AdamW
// and its state, learning-rate schedules, gradient accumulation and clipping, worker
// threads that share a CPU batch out, evaluation, early stopping, metrics.jsonl, atomic
// checkpoints and exact resume. It takes tokenized data (token streams for Pretrain,
// Sequences for FineTune, any Batcher for Train) and sees models through one small
// interface (LM); file formats of models and adapters are the LM's, plots are the
// caller's.
package training

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// LM is a causal language model the trainer can drive.
type LM interface {
	// Loss is the mean next-token cross-entropy of ids (B, T) against targets (B, T).
	Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor
	Parameters() []*torch.Tensor // trainable, in the order of Names
	Names() []string
	Device() torch.Device
	// Save writes the trainable weights as a self-contained folder (an adapter, a
	// model): the run's result, its best/ and each checkpoint's weights.
	Save(dir string) error
	// Restore copies into Parameters the weights Save wrote to dir (resuming).
	Restore(dir string) error
}

// TrainConfig configures the training loop (Train). Zero values take the defaults noted.
type TrainConfig struct {
	Steps     int // optimizer steps
	GradAccum int // batches whose gradients add up to one step; 0 or 1: none
	// Autocast runs the forward pass in mixed precision with this dtype (torch.BFloat16
	// or torch.Float16) on the model's device; 0 leaves it off.
	Autocast    torch.DType
	Schedule    Schedule // learning rate; Total defaults to Steps
	WeightDecay float64  // AdamW decoupled weight decay
	GradClip    float64  // global gradient-norm limit; 0 disables
	Seed        uint64   // recorded in checkpoints; a resume must use the same
	EvalEvery   int      // steps between evaluations; 0: only at the end
	Patience    int      // stop after this many evaluations without improvement; 0: never
	// Metrics, when set, computes task metrics at every evaluation (logged to
	// metrics.jsonl); StopOn names the one (higher is better) that decides the best
	// model and early stopping instead of the evaluation loss.
	Metrics func() (map[string]float64, error)
	StopOn  string
	// Workers is the number of OS threads that share out each batch's rows on the CPU,
	// each running libtorch's kernels single-threaded (see Workers); a resumed run must
	// use the same number to end with the same bits. 0: one per libtorch thread
	// (torch.NumThreads) when the model is on the CPU and allows it (ConcurrentLM: LoRA
	// without dropout, full fine-tuning), else none; 1: none, every kernel split across
	// libtorch's threads instead.
	Workers         int
	CheckpointEvery int    // steps between checkpoints; 0: only at the end
	LogEvery        int    // steps between metrics.jsonl lines; 0: 10
	MaxBadSteps     int    // consecutive non-finite losses before giving up; 0: 5
	OutDir          string // run folder: metrics.jsonl, checkpoints/, best/, the final model
	// Resume continues from OutDir/checkpoints/latest when there is one (a run whose
	// checkpoint is at the last step does no more steps and returns its result again).
	// Without a checkpoint the run starts afresh. Either way metrics.jsonl keeps only
	// the lines up to the step the run starts from.
	Resume bool
	// Identity holds what else decides the run's result besides the loop's own settings
	// (the data's fingerprint, the model, the adapter's shape): it is recorded in every
	// checkpoint with those settings, and a resume whose settings differ in any of them
	// is refused with the name of the one that differs.
	Identity map[string]string
}

// settings are the values that decide a run's result: the loop's own settings (workers
// as resolved) and cfg.Identity.
func (c *TrainConfig) settings(workers int) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	m := map[string]string{
		"steps": strconv.Itoa(c.Steps), "grad_accum": strconv.Itoa(max(c.GradAccum, 1)), "autocast": c.Autocast.String(),
		"lr": f(c.Schedule.Peak), "warmup": strconv.Itoa(c.Schedule.Warmup),
		"min_lr_ratio": f(c.Schedule.MinRatio), "schedule": c.Schedule.Kind, "weight_decay": f(c.WeightDecay),
		"grad_clip": f(c.GradClip), "seed": strconv.FormatUint(c.Seed, 10), "workers": strconv.Itoa(max(workers, 1)),
		"eval_every": strconv.Itoa(c.EvalEvery), "patience": strconv.Itoa(c.Patience), "stop_on": c.StopOn,
	}
	if c.Schedule.Total != c.Steps { // a schedule longer or shorter than the run
		m["lr_total"] = strconv.Itoa(c.Schedule.Total)
	}
	for k, v := range c.Identity {
		m[k] = v
	}
	return m
}

// Batcher yields the batch of an optimizer step: ids and next-token targets (-100: no
// loss), both (B, T) row-major. A step's batch must depend only on the step, so that a
// resumed run sees the data an uninterrupted one would.
type Batcher interface {
	Batch(step int) (ids, targets []int64, B, T int)
}

// Progress is reported after every step.
type Progress struct {
	Step, Steps  int
	Loss         float64 // this step's training loss
	LR           float64
	GradNorm     float64
	Tokens       int64 // tokens trained on, including before a resume
	TokensPerSec float64
	Elapsed, ETA time.Duration
	EvalLoss     float64            // NaN unless this step evaluated
	Metrics      map[string]float64 // task metrics, when this step evaluated them
	Skipped      bool               // the step was skipped (non-finite loss)
}

// TrainResult summarises a finished run.
type TrainResult struct {
	Steps        int           `json:"steps"`
	Tokens       int64         `json:"train_tokens"`
	FirstLoss    float64       `json:"first_loss"`
	FinalLoss    float64       `json:"final_loss"` // mean of the last 10 steps
	EvalLoss     float64       `json:"heldout_loss"`
	Perplexity   float64       `json:"heldout_perplexity"`
	Wall         time.Duration `json:"wall_ns"`
	TokensPerSec float64       `json:"tokens_per_s"`
	SkippedSteps int           `json:"skipped_steps"`
	ResumedFrom  int           `json:"resumed_from_step"`
	StoppedEarly bool          `json:"stopped_early"`
	BestEvalLoss float64       `json:"best_heldout_loss"` // the best score: loss, or -metric with StopOn
	BestStep     int           `json:"best_step"`
}

// accumulate runs the accum micro-batches of an optimizer step (batches (step-1)*accum+1
// onwards), backpropagating each one's loss divided by accum so the gradients add up to
// the mean's. It returns the mean loss (non-finite if any micro-batch's is; then the
// remaining ones are not run) and the number of target tokens.
func accumulate(lm LM, w *Workers, src Batcher, step, accum int, autocast torch.DType) (float64, int64, error) {
	var sum float64
	var n int64
	for j := 0; j < accum; j++ {
		ids, targets, B, T := src.Batch((step-1)*accum + j + 1)
		lv, c, err := Backward(lm, w, ids, targets, B, T, 1/float64(accum), autocast)
		if err != nil {
			return 0, 0, err
		}
		n += c
		if math.IsNaN(lv) || math.IsInf(lv, 0) {
			return lv, n, nil
		}
		sum += lv
	}
	return sum / float64(accum), n, nil
}

// MarshalJSON writes non-finite values (no evaluation ran) as null.
func (r TrainResult) MarshalJSON() ([]byte, error) {
	type plain TrainResult
	return json.Marshal(struct {
		plain
		FirstLoss    any `json:"first_loss"`
		FinalLoss    any `json:"final_loss"`
		EvalLoss     any `json:"heldout_loss"`
		Perplexity   any `json:"heldout_perplexity"`
		BestEvalLoss any `json:"best_heldout_loss"`
	}{plain(r), finite(r.FirstLoss), finite(r.FinalLoss), finite(r.EvalLoss), finite(r.Perplexity), finite(r.BestEvalLoss)})
}

func (c *TrainConfig) defaults() {
	if c.Schedule.Total == 0 {
		c.Schedule.Total = c.Steps
	}
	if c.LogEvery == 0 {
		c.LogEvery = 10
	}
	if c.MaxBadSteps == 0 {
		c.MaxBadSteps = 5
	}
}

func (c *TrainConfig) validate() error {
	switch {
	case c.Steps <= 0:
		return fmt.Errorf("steps must be positive, got %d", c.Steps)
	case c.OutDir == "":
		return errors.New("an output folder is required")
	case c.GradClip < 0 || c.WeightDecay < 0:
		return errors.New("grad clip and weight decay must be >= 0")
	case c.Patience < 0:
		return errors.New("patience must be >= 0")
	case c.GradAccum < 0:
		return fmt.Errorf("gradient accumulation must be 0 or 1 (none) or more, got %d", c.GradAccum)
	case c.EvalEvery < 0 || c.CheckpointEvery < 0 || c.LogEvery < 0:
		return fmt.Errorf("evaluation, checkpoint and log intervals must be >= 0 (0: the default), got %d, %d and %d",
			c.EvalEvery, c.CheckpointEvery, c.LogEvery)
	case c.MaxBadSteps < 0:
		return fmt.Errorf("max bad steps must be >= 0, got %d", c.MaxBadSteps)
	case c.Autocast != 0 && c.Autocast != torch.BFloat16 && c.Autocast != torch.Float16:
		return fmt.Errorf("autocast dtype must be bfloat16 or float16, got %v", c.Autocast)
	case c.StopOn != "" && c.Metrics == nil:
		return fmt.Errorf("stopping on %q needs a metrics function", c.StopOn)
	}
	return c.Schedule.Validate()
}

// Train runs AdamW on lm's parameters over the batches of src for cfg.Steps steps,
// calling eval (may be nil) every cfg.EvalEvery steps and at the end, writing
// metrics.jsonl and checkpoints under cfg.OutDir, the model with the best evaluation so
// far to OutDir/best, and the final model to cfg.OutDir. report (may be nil) is called
// after every step. Cancelling ctx writes a checkpoint and returns ctx's error; a later
// run with Resume continues where it stopped and, on CPU with the same seed, ends with the
// same weights as an uninterrupted run.
func Train(ctx context.Context, lm LM, src Batcher, eval func() (float64, error), cfg TrainConfig, report func(Progress)) (*TrainResult, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// libtorch's OpenMP workers form one pool per calling OS thread; a goroutine that
	// wanders between threads pays for new pools (measured: 20 % slower steps).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := os.MkdirAll(filepath.Join(cfg.OutDir, "checkpoints"), 0o755); err != nil {
		return nil, err
	}
	params := lm.Parameters()
	for _, p := range params {
		if err := p.SetRequiresGrad(true); err != nil {
			return nil, err
		}
	}
	adamCfg := DefaultAdamW(cfg.Schedule.Peak)
	adamCfg.WeightDecay = cfg.WeightDecay
	opt, err := NewAdamW(params, adamCfg)
	if err != nil {
		return nil, err
	}
	defer opt.Close()

	accum := max(cfg.GradAccum, 1)
	nWorkers, err := workerCount(lm, cfg.Workers)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	res := &TrainResult{EvalLoss: math.NaN(), Perplexity: math.NaN(), FirstLoss: math.NaN(), BestEvalLoss: math.NaN()}
	st := trainState{Seed: cfg.Seed, Settings: cfg.settings(nWorkers), FirstLoss: maybe(math.NaN()), EvalLoss: maybe(math.NaN())}
	if cfg.Resume {
		if _, err := restore(cfg.OutDir, lm, opt, st.Settings, &st); err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if st.BestStep > 0 {
			res.BestEvalLoss, res.BestStep = st.BestEval, st.BestStep
		}
		res.ResumedFrom = st.Step
		res.FirstLoss, res.EvalLoss, res.StoppedEarly = float64(st.FirstLoss), float64(st.EvalLoss), st.Stopped
	}
	metricsPath := filepath.Join(cfg.OutDir, "metrics.jsonl")
	if err := trimMetrics(metricsPath, st.Step); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	metrics, err := os.OpenFile(metricsPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()
	enc := json.NewEncoder(metrics)
	// With workers, this thread's own share of a step (adding up their gradients, the
	// optimizer) runs single-threaded: a parallel kernel here would leave libtorch's helper
	// thread spinning on a core the workers need. Evaluation gets the threads back.
	var workers *Workers
	threads := torch.NumThreads()
	if nWorkers > 1 {
		workers = NewWorkers(nWorkers)
		defer workers.Close()
		defer torch.SetThreadNumThreads(threads)
	}
	start := time.Now()
	startStep := st.Step
	var trained int64 // target tokens trained on by this process
	bad, stale := 0, 0
	for step := st.Step + 1; step <= cfg.Steps && !st.Stopped; step++ {
		if err := ctx.Err(); err != nil {
			if cerr := checkpoint(cfg.OutDir, lm, opt, st); cerr != nil {
				return nil, errors.Join(err, cerr)
			}
			return nil, err
		}
		lr := cfg.Schedule.LR(step)
		if workers != nil {
			torch.SetThreadNumThreads(1)
		}
		lv, n, err := accumulate(lm, workers, src, step, accum, cfg.Autocast)
		if err != nil {
			return nil, fmt.Errorf("train: step %d: %w", step, err)
		}
		p := Progress{Step: step, Steps: cfg.Steps, Loss: lv, LR: lr, EvalLoss: math.NaN()}
		if math.IsNaN(lv) || math.IsInf(lv, 0) {
			// A training-health guard: skip the update, stop if it keeps happening.
			bad++
			res.SkippedSteps++
			p.Skipped = true
			if err := torch.ZeroGrad(params); err != nil {
				return nil, err
			}
			if bad >= cfg.MaxBadSteps {
				return nil, fmt.Errorf("train: step %d: loss non-finite for %d steps in a row", step, bad)
			}
		} else {
			bad = 0
			p.GradNorm, err = torch.ClipGradNorm(params, cfg.GradClip)
			if err == nil {
				err = opt.Step(lr)
			}
			if err == nil {
				err = torch.ZeroGrad(params)
			}
			if err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step, err)
			}
			if math.IsNaN(float64(st.FirstLoss)) {
				st.FirstLoss, res.FirstLoss = maybe(lv), lv
			}
			st.Recent = append(st.Recent, lv)
			if len(st.Recent) > 10 {
				st.Recent = st.Recent[1:]
			}
		}
		if workers != nil {
			torch.SetThreadNumThreads(threads)
		}
		st.Step = step
		st.Tokens += n
		trained += n
		elapsed := time.Since(start)
		done := step - startStep
		p.Tokens = st.Tokens
		p.Elapsed = elapsed
		p.TokensPerSec = float64(trained) / elapsed.Seconds()
		p.ETA = time.Duration(float64(elapsed) / float64(done) * float64(cfg.Steps-step))

		stop := false
		if (eval != nil || cfg.Metrics != nil) && ((cfg.EvalEvery > 0 && step%cfg.EvalEvery == 0) || step == cfg.Steps) {
			p.EvalLoss = math.NaN()
			if eval != nil {
				if p.EvalLoss, err = eval(); err != nil {
					return nil, fmt.Errorf("train: step %d: evaluation: %w", step, err)
				}
			}
			score := p.EvalLoss // lower is better
			if cfg.Metrics != nil {
				if p.Metrics, err = cfg.Metrics(); err != nil {
					return nil, fmt.Errorf("train: step %d: metrics: %w", step, err)
				}
				if cfg.StopOn != "" {
					v, ok := p.Metrics[cfg.StopOn]
					if !ok {
						return nil, fmt.Errorf("train: metrics have no %q to stop on", cfg.StopOn)
					}
					score = -v
				}
			}
			if math.IsNaN(res.BestEvalLoss) || score < res.BestEvalLoss {
				res.BestEvalLoss, res.BestStep, stale = score, step, 0
				st.BestEval, st.BestStep = score, step
				best := filepath.Join(cfg.OutDir, "best")
				err := os.MkdirAll(best, 0o755)
				if err == nil {
					err = lm.Save(best)
				}
				if err != nil {
					return nil, fmt.Errorf("train: saving the best model: %w", err)
				}
			} else if stale++; cfg.Patience > 0 && stale >= cfg.Patience {
				stop, res.StoppedEarly, st.Stopped = true, true, true
			}
		}
		if step%cfg.LogEvery == 0 || step == cfg.Steps || stop || !math.IsNaN(p.EvalLoss) || p.Metrics != nil || step == startStep+1 {
			if err := enc.Encode(metricLine(p)); err != nil {
				return nil, err
			}
		}
		if report != nil {
			report(p)
		}
		if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 && step != cfg.Steps && !stop {
			if err := checkpoint(cfg.OutDir, lm, opt, st); err != nil {
				return nil, err
			}
		}
		if !math.IsNaN(p.EvalLoss) {
			res.EvalLoss, st.EvalLoss = p.EvalLoss, maybe(p.EvalLoss)
		}
		if stop {
			break
		}
	}
	if err := checkpoint(cfg.OutDir, lm, opt, st); err != nil {
		return nil, err
	}
	if err := lm.Save(cfg.OutDir); err != nil {
		return nil, fmt.Errorf("train: saving the model: %w", err)
	}
	res.Steps = st.Step
	res.Tokens = st.Tokens
	res.Wall = time.Since(start)
	if trained > 0 {
		res.TokensPerSec = float64(trained) / res.Wall.Seconds()
	}
	res.FinalLoss = mean(st.Recent)
	res.Perplexity = math.Exp(res.EvalLoss)
	return res, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func metricLine(p Progress) map[string]any {
	m := map[string]any{
		"step": p.Step, "loss": finite(p.Loss), "lr": p.LR, "grad_norm": finite(p.GradNorm),
		"tokens": p.Tokens, "tokens_per_s": p.TokensPerSec, "elapsed_s": p.Elapsed.Seconds(),
	}
	if !math.IsNaN(p.EvalLoss) {
		m["eval_loss"] = p.EvalLoss
	}
	for k, v := range p.Metrics {
		m["eval_"+k] = finite(v)
	}
	if p.Skipped {
		m["skipped"] = true
	}
	return m
}

// finite maps non-finite values to nil, which encoding/json writes as null.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// trimMetrics keeps the lines of a metrics.jsonl up to step upTo (none when 0): a run
// resumed from a checkpoint at upTo logs the steps after it again.
func trimMetrics(path string, upTo int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep []byte
	past := errors.New("past the checkpoint")
	err = jsonl.Read(bytes.NewReader(b), 16<<20, func(l jsonl.Line) error {
		var line struct {
			Step int `json:"step"`
		}
		if l.TooLong || json.Unmarshal(l.Bytes, &line) != nil || line.Step > upTo {
			return past // a torn line from a crash, or past the checkpoint: the rest goes
		}
		keep = append(append(keep, l.Bytes...), '\n')
		return nil
	})
	if err != nil && !errors.Is(err, past) {
		return err
	}
	if len(keep) == len(b) {
		return nil
	}
	return fsutil.WriteFileAtomic(path, keep)
}
