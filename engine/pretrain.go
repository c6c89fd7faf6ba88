package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/plot"
)

// LM is a causal language model the trainer can drive.
type LM interface {
	// Loss is the mean next-token cross-entropy of ids (B, T) against targets (B, T).
	Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor
	Parameters() []*torch.Tensor // trainable, in the order of Names
	Names() []string
	Device() torch.Device
	Save(dir string) error // a self-contained model folder
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
	Resume          bool   // continue from OutDir/checkpoints/latest when present
}

// PretrainConfig configures Pretrain: the loop's settings plus the token-stream batches.
type PretrainConfig struct {
	TrainConfig
	BatchSize  int // sequences per step (B)
	SeqLen     int // tokens per sequence (T)
	EvalTokens int // held-out tokens per evaluation; 0: 65,536
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

// WriteCurve draws OutDir/metrics.jsonl's training and evaluation loss as OutDir/curve.png.
func WriteCurve(outDir string) error {
	f, err := os.Open(filepath.Join(outDir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	defer f.Close()
	train := plot.Series{Name: "training loss", Color: color.RGBA{200, 60, 40, 255}}
	eval := plot.Series{Name: "evaluation loss", Color: color.RGBA{30, 90, 200, 255}}
	dec := json.NewDecoder(f)
	for dec.More() {
		var m struct {
			Step int      `json:"step"`
			Loss *float64 `json:"loss"`
			Eval *float64 `json:"eval_loss"`
		}
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		if m.Loss != nil {
			train.X, train.Y = append(train.X, float64(m.Step)), append(train.Y, *m.Loss)
		}
		if m.Eval != nil {
			eval.X, eval.Y = append(eval.X, float64(m.Step)), append(eval.Y, *m.Eval)
		}
	}
	series := []plot.Series{train}
	if len(eval.X) > 0 {
		series = append(series, eval)
	}
	if len(train.X) == 0 {
		return nil
	}
	return plot.Lines(filepath.Join(outDir, "curve.png"), "loss (nats per target token)", "step", series)
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
	case c.Autocast != 0 && c.Autocast != torch.BFloat16 && c.Autocast != torch.Float16:
		return fmt.Errorf("autocast dtype must be bfloat16 or float16, got %v", c.Autocast)
	case c.StopOn != "" && c.Metrics == nil:
		return fmt.Errorf("stopping on %q needs a metrics function", c.StopOn)
	}
	return c.Schedule.Validate()
}

func (c *PretrainConfig) validate(train, heldout int) error {
	switch {
	case c.BatchSize <= 0 || c.SeqLen <= 0:
		return fmt.Errorf("batch size and sequence length must be positive, got %d and %d", c.BatchSize, c.SeqLen)
	case train < c.SeqLen+2:
		return fmt.Errorf("training data has %d tokens, fewer than one sequence of %d", train, c.SeqLen+1)
	case heldout > 0 && heldout < c.SeqLen+1:
		return fmt.Errorf("held-out data has %d tokens, fewer than one sequence of %d", heldout, c.SeqLen+1)
	}
	return c.TrainConfig.validate()
}

// windows is the Batcher of Pretrain: B random windows of a token stream.
type windows struct {
	tokens []int32
	seed   uint64
	B, T   int
}

func (w windows) Batch(step int) ([]int64, []int64, int, int) {
	ids := make([]int64, w.B*w.T)
	targets := make([]int64, w.B*w.T)
	batch(w.tokens, w.seed, step, w.B, w.T, ids, targets)
	return ids, targets, w.B, w.T
}

// batch fills ids and targets (B*T each) with B windows of the token stream. The windows
// of a step depend only on (seed, step), so a resumed run sees the same data.
func batch(tokens []int32, seed uint64, step, B, T int, ids, targets []int64) {
	r := rand.New(rand.NewPCG(seed, uint64(step)))
	for b := 0; b < B; b++ {
		off := r.IntN(len(tokens) - T - 1)
		for t := 0; t < T; t++ {
			ids[b*T+t] = int64(tokens[off+t])
			targets[b*T+t] = int64(tokens[off+t+1])
		}
	}
}

// EvalLoss is the mean next-token loss over consecutive windows of tokens (at most
// maxTokens predicted tokens), without recording gradients.
func EvalLoss(lm LM, tokens []int32, B, T, maxTokens int) (float64, error) {
	windows := (len(tokens) - 1) / T
	if maxTokens > 0 && windows > maxTokens/T {
		windows = maxTokens / T
	}
	if windows == 0 {
		return math.NaN(), fmt.Errorf("evaluation data has %d tokens, fewer than one window of %d", len(tokens), T+1)
	}
	var sum float64
	var count int
	err := torch.NoGrad(func() error {
		for w := 0; w < windows; w += B {
			n := min(B, windows-w)
			ids := make([]int64, n*T)
			tg := make([]int64, n*T)
			for b := 0; b < n; b++ {
				off := (w + b) * T
				for t := 0; t < T; t++ {
					ids[b*T+t] = int64(tokens[off+t])
					tg[b*T+t] = int64(tokens[off+t+1])
				}
			}
			s := torch.NewScope()
			dev := lm.Device()
			l, err := lm.Loss(s, s.Int64s(ids, []int64{int64(n), int64(T)}, dev), s.Int64s(tg, []int64{int64(n), int64(T)}, dev)).Item()
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return err
			}
			sum += l * float64(n*T)
			count += n * T
		}
		return nil
	})
	if err != nil {
		return math.NaN(), err
	}
	return sum / float64(count), nil
}

type trainState struct {
	Step     int     `json:"step"`
	Tokens   int64   `json:"tokens"`
	Seed     uint64  `json:"seed"`
	BestEval float64 `json:"best_eval_loss"`
	BestStep int     `json:"best_step"`
}

// Pretrain trains lm on next-token prediction over random windows of a token stream with
// AdamW, evaluating on heldout; see Train for the run folder, cancellation and resume.
func Pretrain(ctx context.Context, lm LM, train, heldout []int32, cfg PretrainConfig, report func(Progress)) (*TrainResult, error) {
	cfg.defaults()
	if cfg.EvalTokens == 0 {
		cfg.EvalTokens = 65536
	}
	if err := cfg.validate(len(train), len(heldout)); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	var eval func() (float64, error)
	if len(heldout) > 0 {
		eval = func() (float64, error) { return EvalLoss(lm, heldout, cfg.BatchSize, cfg.SeqLen, cfg.EvalTokens) }
	}
	return Train(ctx, lm, windows{train, cfg.Seed, cfg.BatchSize, cfg.SeqLen}, eval, cfg.TrainConfig, report)
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

	res := &TrainResult{EvalLoss: math.NaN(), Perplexity: math.NaN(), FirstLoss: math.NaN(), BestEvalLoss: math.NaN()}
	st := trainState{Seed: cfg.Seed}
	if cfg.Resume {
		ok, err := restore(cfg.OutDir, lm, opt, &st)
		if err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if ok && st.Seed != cfg.Seed {
			return nil, fmt.Errorf("train: resume: checkpoint was trained with seed %d, not %d", st.Seed, cfg.Seed)
		}
		if st.BestStep > 0 {
			res.BestEvalLoss, res.BestStep = st.BestEval, st.BestStep
		}
		res.ResumedFrom = st.Step
	}
	metrics, err := os.OpenFile(filepath.Join(cfg.OutDir, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()
	enc := json.NewEncoder(metrics)

	accum := max(cfg.GradAccum, 1)
	workers, err := StartWorkers(lm, cfg.Workers)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// With workers, this thread's own share of a step (adding up their gradients, the
	// optimizer) runs single-threaded: a parallel kernel here would leave libtorch's helper
	// thread spinning on a core the workers need. Evaluation gets the threads back.
	threads := torch.NumThreads()
	if workers != nil {
		defer workers.Close()
		defer torch.SetThreadNumThreads(threads)
	}
	start := time.Now()
	startStep := st.Step
	var recent []float64
	var trained int64 // target tokens trained on by this process
	bad, stale := 0, 0
	for step := st.Step + 1; step <= cfg.Steps; step++ {
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
			if math.IsNaN(res.FirstLoss) {
				res.FirstLoss = lv
			}
			recent = append(recent, lv)
			if len(recent) > 10 {
				recent = recent[1:]
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
				stop, res.StoppedEarly = true, true
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
			res.EvalLoss = p.EvalLoss
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
	if err := WriteCurve(cfg.OutDir); err != nil {
		return nil, err
	}
	res.Steps = st.Step
	res.Tokens = st.Tokens
	res.Wall = time.Since(start)
	if trained > 0 {
		res.TokensPerSec = float64(trained) / res.Wall.Seconds()
	}
	res.FinalLoss = mean(recent)
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

// checkpoint writes OutDir/checkpoints/step-NNNNNNN (model, optimizer, state) and then
// points OutDir/checkpoints/latest at it with an atomic rename, so a crash at any moment
// leaves the previous checkpoint usable. Older checkpoints beyond the last two are removed.
func checkpoint(outDir string, lm LM, opt *AdamW, st trainState) error {
	root := filepath.Join(outDir, "checkpoints")
	name := fmt.Sprintf("step-%07d", st.Step)
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := lm.Save(dir); err != nil {
		return fmt.Errorf("checkpoint %s: model: %w", name, err)
	}
	tensors, meta, err := opt.StateTensors(lm.Names())
	if err != nil {
		return err
	}
	if r, ok := lm.(Randomized); ok { // generator states ride along with the moments
		rs := torch.NewScope()
		defer rs.Close()
		for i, g := range r.Generators() {
			tensors[fmt.Sprintf("rng.%d", i)] = g.State(rs)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("checkpoint %s: generator state: %w", name, err)
		}
	}
	if err := torch.Save(filepath.Join(dir, "optimizer.safetensors"), tensors, meta); err != nil {
		return fmt.Errorf("checkpoint %s: optimizer: %w", name, err)
	}
	b, _ := json.Marshal(st)
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "state.json"), b); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(root, "latest"), []byte(name+"\n")); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var old []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") && e.Name() != name {
			old = append(old, e.Name())
		}
	}
	sort.Strings(old)
	for len(old) > 1 {
		if err := os.RemoveAll(filepath.Join(root, old[0])); err != nil {
			return err
		}
		old = old[1:]
	}
	return nil
}

// restore loads the latest checkpoint into lm and opt; it reports false when there is none.
func restore(outDir string, lm LM, opt *AdamW, st *trainState) (bool, error) {
	root := filepath.Join(outDir, "checkpoints")
	b, err := os.ReadFile(filepath.Join(root, "latest"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dir := filepath.Join(root, strings.TrimSpace(string(b)))
	sb, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(sb, st); err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Join(dir, "state.json"), err)
	}
	s := torch.NewScope()
	defer s.Close()
	// A full model's checkpoint holds model.safetensors; an adapter's adapter_model.safetensors.
	file := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(file); err != nil {
		file = filepath.Join(dir, "adapter_model.safetensors")
	}
	weights, _, err := s.Load(file, lm.Device())
	if err != nil {
		return false, err
	}
	err = torch.NoGrad(func() error {
		for i, n := range lm.Names() {
			w := weights[n]
			if w == nil {
				return fmt.Errorf("%s: weight %s missing", dir, n)
			}
			if err := lm.Parameters()[i].CopyFrom(w); err != nil {
				return fmt.Errorf("%s: weight %s: %w", dir, n, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	ot, meta, err := s.Load(filepath.Join(dir, "optimizer.safetensors"), torch.CPU)
	if err != nil {
		return false, err
	}
	if r, ok := lm.(Randomized); ok {
		for i, g := range r.Generators() {
			state := ot[fmt.Sprintf("rng.%d", i)]
			if state == nil {
				return false, fmt.Errorf("%s: generator state rng.%d missing", dir, i)
			}
			if err := g.SetState(state); err != nil {
				return false, fmt.Errorf("%s: generator %d: %w", dir, i, err)
			}
		}
	}
	return true, opt.LoadState(lm.Names(), ot, meta)
}

// Randomized is implemented by models whose training draws random numbers (dropout):
// their generators' states are checkpointed so a resumed run draws what an uninterrupted
// one would.
type Randomized interface {
	Generators() []*torch.Generator
}
