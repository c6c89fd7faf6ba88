package training

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
)

// bigram is the smallest LM: logits for the next token are a row of a (V, V) table,
// passed through one hidden layer so there is more than one parameter.
type bigram struct {
	scope   *torch.Scope
	emb, w  *torch.Tensor
	poison  bool // make Loss non-finite
	vocab   int64
	savedTo []string
}

func newBigram(t *testing.T, vocab int64, seed uint64) *bigram {
	t.Helper()
	g, err := torch.NewGenerator(seed, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := torch.NewScope()
	m := &bigram{scope: s, vocab: vocab}
	m.emb = s.MulScalar(s.Randn([]int64{vocab, 8}, torch.Float32, torch.CPU, g), 0.1)
	m.w = s.MulScalar(s.Randn([]int64{vocab, 8}, torch.Float32, torch.CPU, g), 0.1)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return m
}

func (m *bigram) Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor {
	logits := s.Linear(s.Tanh(s.Embedding(m.emb, ids)), m.w, nil)
	if m.poison {
		logits = s.MulScalar(logits, math.NaN())
	}
	return s.CrossEntropy(s.Reshape(logits, -1, m.vocab), s.Reshape(targets, -1), -100, torch.ReduceMean)
}
func (m *bigram) Parameters() []*torch.Tensor { return []*torch.Tensor{m.emb, m.w} }
func (m *bigram) Names() []string             { return []string{"emb", "w"} }
func (m *bigram) Device() torch.Device        { return torch.CPU }
func (m *bigram) Save(dir string) error {
	m.savedTo = append(m.savedTo, dir)
	return torch.Save(filepath.Join(dir, "model.safetensors"), map[string]*torch.Tensor{"emb": m.emb, "w": m.w}, nil)
}
func (m *bigram) Restore(dir string) error {
	return torch.LoadInto(filepath.Join(dir, "model.safetensors"), m.Names(), m.Parameters())
}

func corpus(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32((i*i + 3*i) % 11) // a deterministic pattern a bigram model can partly learn
	}
	return out
}

func smallConfig(dir string) PretrainConfig {
	return PretrainConfig{BatchSize: 4, SeqLen: 8, TrainConfig: TrainConfig{
		Steps: 12, Seed: 3, OutDir: dir, GradClip: 1, WeightDecay: 0.01,
		Schedule: Schedule{Peak: 0.05, Warmup: 2, MinRatio: 0.1}, EvalEvery: 4, CheckpointEvery: 3,
	}}
}

func TestScheduleShape(t *testing.T) {
	s := Schedule{Peak: 1, Warmup: 10, Total: 110, MinRatio: 0.1}
	for _, c := range []struct {
		step int
		want float64
	}{
		{1, 0.1}, {5, 0.5}, {10, 1}, // linear warmup
		{60, 0.1 + 0.9*0.5},    // halfway through the cosine: floor + (1-floor)/2
		{110, 0.1}, {500, 0.1}, // the floor after Total
	} {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Fatalf("cosine LR(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	s.Kind = "linear"
	if got := s.LR(60); math.Abs(got-0.55) > 1e-12 {
		t.Fatalf("linear LR(60) = %v", got)
	}
	s.Kind = "constant"
	if s.LR(100) != 1 {
		t.Fatal("constant schedule decays")
	}
	for _, bad := range []Schedule{{Peak: 0}, {Peak: 1, Warmup: -1}, {Peak: 1, MinRatio: 2}, {Peak: 1, Kind: "step"}} {
		if bad.Validate() == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func TestPretrainLearnsAndWritesRun(t *testing.T) {
	dir := t.TempDir()
	m := newBigram(t, 11, 1)
	cfg := smallConfig(dir)
	cfg.Steps = 60
	var seen int
	res, err := Pretrain(context.Background(), m, corpus(4000), corpus(500), cfg, func(p Progress) { seen++ })
	if err != nil {
		t.Fatal(err)
	}
	if seen != 60 || res.Steps != 60 || res.Tokens != 60*4*8 {
		t.Fatalf("progress calls %d, result %+v", seen, res)
	}
	if !(res.FinalLoss < res.FirstLoss-0.5) || math.IsNaN(res.EvalLoss) {
		t.Fatalf("loss %v -> %v (held-out %v): did not learn", res.FirstLoss, res.FinalLoss, res.EvalLoss)
	}
	metrics, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil || !strings.Contains(string(metrics), `"eval_loss"`) {
		t.Fatalf("metrics.jsonl: %v\n%s", err, metrics)
	}
	latest, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "latest"))
	if strings.TrimSpace(string(latest)) != "step-0000060" {
		t.Fatalf("latest checkpoint %q", latest)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if len(entries) != 3 { // latest + two step folders
		t.Fatalf("checkpoints folder holds %d entries", len(entries))
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal("final model not saved:", err)
	}
}

func weightsOf(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := safetensors.ParseHeader(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPretrainResumeIsExact interrupts a run and resumes it; the final weights must be
// bit-identical to an uninterrupted run with the same seed.
func TestPretrainResumeIsExact(t *testing.T) {
	lm := func(seed uint64) LM { return newBigram(t, 11, seed) }
	full, split, res := interruptAndResume(t, lm, smallConfig)
	if res.ResumedFrom != 7 {
		t.Fatalf("resumed from %d, want 7", res.ResumedFrom)
	}
	a := weightsOf(t, filepath.Join(full, "model.safetensors"))
	b := weightsOf(t, filepath.Join(split, "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Fatal("resumed run's weights differ from the uninterrupted run's")
	}
	cfg := smallConfig(split)
	cfg.Resume = true
	cfg.Seed = 4
	if _, err := Pretrain(context.Background(), newBigram(t, 11, 1), corpus(4000), corpus(500), cfg, nil); err == nil || !strings.Contains(err.Error(), "seed=3, this run has seed=4") {
		t.Fatalf("resume with another seed: %v", err)
	}
}

// TestResumeRefusesAnotherRun: a checkpoint records what decides the result; a resume
// with other data, another setting or an identity of the caller's that differs is refused
// and says which, and the checkpoint is left as it was.
func TestResumeRefusesAnotherRun(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir)
	cfg.Identity = map[string]string{"model": "a"}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Pretrain(ctx, newBigram(t, 11, 1), corpus(4000), corpus(500), cfg, func(p Progress) {
		if p.Step == 4 {
			cancel()
		}
	}); err != context.Canceled {
		t.Fatalf("interrupted run: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "step-0000004", "state.json"))
	for _, c := range []struct {
		train  []int32
		mutate func(*PretrainConfig)
		want   string
	}{
		{corpus(3000), nil, "data="},
		{corpus(4000), func(c *PretrainConfig) { c.Schedule.Peak = 0.1 }, "lr=0.05, this run has lr=0.1"},
		{corpus(4000), func(c *PretrainConfig) { c.Steps = 20 }, "steps=12, this run has steps=20"},
		{corpus(4000), func(c *PretrainConfig) { c.BatchSize = 2 }, "batch=4, this run has batch=2"},
		{corpus(4000), func(c *PretrainConfig) { c.Identity = map[string]string{"model": "b"} }, "model=a, this run has model=b"},
	} {
		cfg := smallConfig(dir)
		cfg.Identity = map[string]string{"model": "a"}
		cfg.Resume = true
		if c.mutate != nil {
			c.mutate(&cfg)
		}
		_, err := Pretrain(context.Background(), newBigram(t, 11, 1), c.train, corpus(500), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resume expecting %q: %v", c.want, err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "step-0000004", "state.json"))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused resume changed the checkpoint")
	}
}

// TestResumeOfAFinishedRunAndMetrics: resuming a finished run trains nothing and returns
// the same losses; a resumed run's metrics.jsonl lists each step once.
func TestResumeOfAFinishedRunAndMetrics(t *testing.T) {
	lm := func(seed uint64) LM { return newBigram(t, 11, seed) }
	full, split, res := interruptAndResume(t, lm, smallConfig)
	steps := func(dir string) []int {
		b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m struct{ Step int }
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Step)
		}
		return out
	}
	if a, b := steps(full), steps(split); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("metrics.jsonl steps: uninterrupted %v, interrupted and resumed %v", a, b)
	}
	cfg := smallConfig(split)
	cfg.Resume = true
	again, err := Pretrain(context.Background(), newBigram(t, 11, 5), corpus(4000), corpus(500), cfg, func(Progress) {
		t.Fatal("a finished run trained again")
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.FirstLoss != res.FirstLoss || again.FinalLoss != res.FinalLoss || again.EvalLoss != res.EvalLoss || math.IsNaN(again.FinalLoss) {
		t.Fatalf("resumed finished run: losses %v %v %v, the run's %v %v %v", again.FirstLoss, again.FinalLoss, again.EvalLoss,
			res.FirstLoss, res.FinalLoss, res.EvalLoss)
	}
	// With Resume and no checkpoint a run starts afresh, and its metrics.jsonl does not
	// keep the lines of an earlier run in the folder.
	fresh := smallConfig(split)
	if err := os.RemoveAll(filepath.Join(split, "checkpoints")); err != nil {
		t.Fatal(err)
	}
	fresh.Resume = true
	if _, err := Pretrain(context.Background(), newBigram(t, 11, 1), corpus(4000), corpus(500), fresh, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := steps(full), steps(split); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("metrics.jsonl after a fresh start in a used folder: %v, want %v", b, a)
	}
}

// interruptAndResume pretrains lm(1) to the end in one folder, and in another stops a run
// of lm(1) after step 7 and resumes it with lm(99) (a different initialisation, which the
// checkpoint must overwrite). It returns both folders and the resumed run's result.
func interruptAndResume(t *testing.T, lm func(seed uint64) LM, cfgFor func(dir string) PretrainConfig) (full, split string, res *TrainResult) {
	t.Helper()
	full = t.TempDir()
	if _, err := Pretrain(context.Background(), lm(1), corpus(4000), corpus(500), cfgFor(full), nil); err != nil {
		t.Fatal(err)
	}
	split = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Pretrain(ctx, lm(1), corpus(4000), corpus(500), cfgFor(split), func(p Progress) {
		if p.Step == 7 {
			cancel()
		}
	})
	if err != context.Canceled {
		t.Fatalf("interrupted run returned %v", err)
	}
	cfg := cfgFor(split)
	cfg.Resume = true
	if res, err = Pretrain(context.Background(), lm(99), corpus(4000), corpus(500), cfg, nil); err != nil {
		t.Fatal(err)
	}
	return full, split, res
}

func TestPretrainStopsOnNonFiniteLoss(t *testing.T) {
	m := newBigram(t, 11, 1)
	m.poison = true
	before, _ := m.emb.Float32s()
	_, err := Pretrain(context.Background(), m, corpus(4000), nil, smallConfig(t.TempDir()), nil)
	if err == nil || !strings.Contains(err.Error(), "non-finite for 5 steps") {
		t.Fatalf("err = %v", err)
	}
	after, _ := m.emb.Float32s()
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("a skipped step changed the weights")
		}
	}
}

func TestPretrainRejectsBadConfig(t *testing.T) {
	m := newBigram(t, 11, 1)
	for _, mutate := range []func(*PretrainConfig){
		func(c *PretrainConfig) { c.Steps = 0 },
		func(c *PretrainConfig) { c.BatchSize = 0 },
		func(c *PretrainConfig) { c.SeqLen = 5000 },
		func(c *PretrainConfig) { c.OutDir = "" },
		func(c *PretrainConfig) { c.Schedule.Peak = -1 },
		func(c *PretrainConfig) { c.GradAccum = -1 },
		func(c *PretrainConfig) { c.EvalEvery = -1 },
		func(c *PretrainConfig) { c.CheckpointEvery = -2 },
		func(c *PretrainConfig) { c.Workers = MaxWorkers + 1 },
	} {
		cfg := smallConfig(t.TempDir())
		mutate(&cfg)
		if _, err := Pretrain(context.Background(), m, corpus(4000), nil, cfg, nil); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

func TestEarlyStoppingAndBestModel(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir)
	cfg.Steps, cfg.EvalEvery, cfg.Patience = 40, 2, 2
	// An evaluation that gets worse after its second call stops the run two calls later.
	calls := 0
	eval := func() (float64, error) {
		calls++
		return []float64{3, 2, 2.5, 2.6, 2.7, 1}[min(calls-1, 5)], nil
	}
	res, err := Train(context.Background(), newBigram(t, 11, 1), windows{corpus(4000), 3, 4, 8}, eval, cfg.TrainConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.Steps != 8 || res.BestStep != 4 || res.BestEvalLoss != 2 {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "best", "model.safetensors")); err != nil {
		t.Fatal("best model not saved:", err)
	}
	b, err := json.Marshal(&TrainResult{EvalLoss: math.NaN()})
	if err != nil || !strings.Contains(string(b), `"heldout_loss":null`) {
		t.Fatalf("NaN in result JSON: %s %v", b, err)
	}
}

// joined yields, as one batch, the two batches that gradient accumulation of 2 would run.
type joined struct{ w windows }

func (j joined) Batch(step int) ([]int64, []int64, int, int) {
	a, at, B, T := j.w.Batch(2*step - 1)
	b, bt, _, _ := j.w.Batch(2 * step)
	return append(a, b...), append(at, bt...), 2 * B, T
}

// TestGradAccumulationEqualsLargeBatch: two accumulated batches of 4 update the weights as
// one batch of 8 does (every window has the same number of targets, so the means agree).
func TestGradAccumulationEqualsLargeBatch(t *testing.T) {
	w := windows{corpus(4000), 3, 4, 8}
	cfg := smallConfig(t.TempDir()).TrainConfig
	a := newBigram(t, 11, 1)
	cfg.GradAccum = 2
	if _, err := Train(context.Background(), a, w, nil, cfg, nil); err != nil {
		t.Fatal(err)
	}
	b := newBigram(t, 11, 1)
	cfg.GradAccum, cfg.OutDir = 1, t.TempDir()
	if _, err := Train(context.Background(), b, joined{w}, nil, cfg, nil); err != nil {
		t.Fatal(err)
	}
	va, _ := a.emb.Float32s()
	vb, _ := b.emb.Float32s()
	for i := range va {
		if math.Abs(float64(va[i]-vb[i])) > 1e-5 {
			t.Fatalf("weight %d: accumulated %v, large batch %v", i, va[i], vb[i])
		}
	}
}

func TestStopOnTaskMetric(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir).TrainConfig
	cfg.Steps, cfg.EvalEvery, cfg.Patience, cfg.StopOn = 40, 2, 2, "accuracy"
	calls := 0
	cfg.Metrics = func() (map[string]float64, error) {
		calls++
		return map[string]float64{"accuracy": []float64{0.2, 0.5, 0.4, 0.3, 0.9}[min(calls-1, 4)]}, nil
	}
	res, err := Train(context.Background(), newBigram(t, 11, 1), windows{corpus(4000), 3, 4, 8}, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.BestStep != 4 || res.Steps != 8 {
		t.Fatalf("result %+v", res)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if !strings.Contains(string(b), `"eval_accuracy":0.5`) {
		t.Fatalf("metrics.jsonl lacks the task metric:\n%s", b)
	}
	cfg.Metrics = nil
	if _, err := Train(context.Background(), newBigram(t, 11, 1), windows{corpus(4000), 3, 4, 8}, nil, cfg, nil); err == nil {
		t.Fatal("StopOn without metrics accepted")
	}
}

func TestTrainWithAutocast(t *testing.T) {
	cfg := smallConfig(t.TempDir())
	cfg.Steps, cfg.Autocast = 60, torch.BFloat16
	res, err := Pretrain(context.Background(), newBigram(t, 11, 1), corpus(4000), corpus(500), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !(res.FinalLoss < res.FirstLoss-0.5) {
		t.Fatalf("bf16 autocast: loss %v -> %v", res.FirstLoss, res.FinalLoss)
	}
	cfg.Autocast = torch.Int64
	if _, err := Pretrain(context.Background(), newBigram(t, 11, 1), corpus(4000), nil, cfg, nil); err == nil {
		t.Fatal("autocast to int64 accepted")
	}
}

// blocker makes the checkpoint of step `at` impossible to write (its folder's name is
// taken by a file) once the run has reached step `when`: a stand-in for a full disk.
type blocker struct {
	windows
	dir      string
	when, at int
}

func (b blocker) Batch(step int) ([]int64, []int64, int, int) {
	if step == b.when {
		_ = os.WriteFile(filepath.Join(b.dir, "checkpoints", fmt.Sprintf("step-%07d", b.at)), []byte("x"), 0o644)
	}
	return b.windows.Batch(step)
}

// TestFailedCheckpointKeepsThePreviousOne: when a checkpoint cannot be written the run
// stops with the error, the previous checkpoint stays the latest and intact, and resuming
// from it ends with the same weights as an uninterrupted run.
func TestFailedCheckpointKeepsThePreviousOne(t *testing.T) {
	w := windows{corpus(4000), 3, 4, 8}
	full := t.TempDir()
	cfg := smallConfig(full).TrainConfig
	if _, err := Train(context.Background(), newBigram(t, 11, 1), w, nil, cfg, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.OutDir = dir
	_, err := Train(context.Background(), newBigram(t, 11, 1), blocker{w, dir, 5, 6}, nil, cfg, nil)
	if err == nil {
		t.Fatal("a checkpoint that cannot be written went unnoticed")
	}
	latest, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "latest"))
	if strings.TrimSpace(string(latest)) != "step-0000003" {
		t.Fatalf("latest = %q after the failed checkpoint", latest)
	}
	_ = os.Remove(filepath.Join(dir, "checkpoints", "step-0000006")) // space again
	cfg.Resume = true
	res, err := Train(context.Background(), newBigram(t, 11, 99), w, nil, cfg, nil)
	if err != nil || res.ResumedFrom != 3 {
		t.Fatalf("resume: %v (from %d)", err, res.ResumedFrom)
	}
	a := weightsOf(t, filepath.Join(full, "model.safetensors"))
	b := weightsOf(t, filepath.Join(dir, "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Fatal("resumed after a failed checkpoint: weights differ from the uninterrupted run")
	}
}
