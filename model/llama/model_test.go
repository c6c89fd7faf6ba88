package llama

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

func tinyConfig() Config {
	return Config{
		VocabSize: 37, HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 32,
		RMSNormEps: 1e-6, RopeTheta: 10000, InitializerRange: 0.2,
	}
}

func mustModel(t testing.TB, cfg Config, dtype torch.DType, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, torch.CPU, dtype, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func ids(s *torch.Scope, B, T int, vocab int, shift int) *torch.Tensor {
	v := make([]int64, B*T)
	for i := range v {
		v[i] = int64((i*7 + shift) % vocab)
	}
	return s.Int64s(v, []int64{int64(B), int64(T)}, torch.CPU)
}

func TestParamCountMatchesTensors(t *testing.T) {
	for _, tie := range []bool{false, true} {
		cfg := tinyConfig()
		cfg.TieWordEmbeddings = tie
		cfg.AttentionBias = true
		m := mustModel(t, cfg, torch.Float32, 1)
		var n int64
		for _, p := range m.Parameters() {
			n += p.Numel()
		}
		if n != m.Config.ParamCount() {
			t.Fatalf("tie=%v: tensors hold %d parameters, ParamCount says %d", tie, n, m.Config.ParamCount())
		}
	}
}

func TestForwardShapeAndCausality(t *testing.T) {
	m := mustModel(t, tinyConfig(), torch.Float64, 3)
	s := torch.NewScope()
	defer s.Close()
	a := ids(s, 2, 6, 37, 0)
	logits := m.Forward(s, a)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if sh := logits.Shape(); len(sh) != 3 || sh[0] != 2 || sh[1] != 6 || sh[2] != 37 {
		t.Fatalf("logits shape %v", sh)
	}
	// Changing the last token must not change the logits at earlier positions.
	vals, _ := a.Int64s()
	vals[5] = (vals[5] + 1) % 37
	b := s.Int64s(vals, []int64{2, 6}, torch.CPU)
	la, _ := s.Slice(logits, 1, 0, 5, 1).Float64s()
	lb, _ := s.Slice(m.Forward(s, b), 1, 0, 5, 1).Float64s()
	for i := range la {
		if la[i] != lb[i] {
			t.Fatalf("position <5 changed when token 5 changed (index %d)", i)
		}
	}
	// ... but the last position does change.
	l5a, _ := s.Select(s.Select(logits, 0, 0), 0, 5).Float64s()
	l5b, _ := s.Select(s.Select(m.Forward(s, b), 0, 0), 0, 5).Float64s()
	if l5a[0] == l5b[0] {
		t.Fatal("last position ignored its own token")
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestGradientsFiniteDifference checks backward through the whole decoder against central
// differences on a sample of parameter elements, in float64.
func TestGradientsFiniteDifference(t *testing.T) {
	m := mustModel(t, tinyConfig(), torch.Float64, 5)
	if err := m.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	in := ids(s, 2, 5, 37, 1)
	tg := ids(s, 2, 5, 37, 4)
	loss := func() float64 {
		ls := torch.NewScope()
		defer ls.Close()
		var v float64
		if err := torch.NoGrad(func() error {
			var err error
			v, err = model.NextTokenLoss(ls, m, in, tg).Item()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	l := model.NextTokenLoss(s, m, in, tg)
	if err := l.Backward(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range []string{
		"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
		"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
		"model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
		"model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
		"model.layers.0.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight",
		"model.layers.0.post_attention_layernorm.weight",
	} {
		p := m.Named(name)
		grad, err := s.Grad(p).Float64s()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vals, _ := p.Float64s()
		for _, j := range []int{0, len(vals) / 3, len(vals) - 1} {
			const h = 1e-6
			orig := vals[j]
			set := func(x float64) {
				vals[j] = x
				if err := p.CopyFrom(s.Float64s(vals, p.Shape(), torch.CPU)); err != nil {
					t.Fatal(err)
				}
			}
			var up, down float64
			if err := torch.NoGrad(func() error { set(orig + h); return nil }); err != nil {
				t.Fatal(err)
			}
			up = loss()
			_ = torch.NoGrad(func() error { set(orig - h); return nil })
			down = loss()
			_ = torch.NoGrad(func() error { set(orig); return nil })
			num := (up - down) / (2 * h)
			if math.Abs(num-grad[j]) > 1e-6*(1+math.Abs(num)) {
				t.Fatalf("%s[%d]: backward %.9g, finite difference %.9g", name, j, grad[j], num)
			}
			checked++
		}
	}
	if checked != 36 {
		t.Fatalf("checked %d elements", checked)
	}
}

func TestSaveLoadSameLogits(t *testing.T) {
	cfg := tinyConfig()
	cfg.TieWordEmbeddings = true
	m := mustModel(t, cfg, torch.Float32, 9)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(dir, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	s := torch.NewScope()
	defer s.Close()
	x := ids(s, 1, 8, 37, 2)
	a, _ := m.Forward(s, x).Float32s()
	b, _ := m2.Forward(s, x).Float32s()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d differs after save/load: %v vs %v", i, a[i], b[i])
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	m := mustModel(t, tinyConfig(), torch.Float32, 1)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	// a config that disagrees with the weights
	cfgPath := filepath.Join(dir, "config.json")
	b, _ := os.ReadFile(cfgPath)
	_ = os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `"intermediate_size": 24`, `"intermediate_size": 25`, 1)), 0o644)
	if _, err := Load(dir, torch.CPU, torch.Float32); err == nil || !strings.Contains(err.Error(), "config implies") {
		t.Fatalf("shape mismatch: %v", err)
	}
	_ = os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `"num_key_value_heads": 2`, `"num_key_value_heads": 3`, 1)), 0o644)
	if _, err := Load(dir, torch.CPU, torch.Float32); err == nil || !strings.Contains(err.Error(), "multiple") {
		t.Fatalf("bad heads: %v", err)
	}
	_ = os.WriteFile(cfgPath, b, 0o644)
	// a truncated weights file
	wp := filepath.Join(dir, "model.safetensors")
	w, _ := os.ReadFile(wp)
	_ = os.WriteFile(wp, w[:len(w)/2], 0o644)
	if _, err := Load(dir, torch.CPU, torch.Float32); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("truncated weights: %v", err)
	}
	if _, err := Load(t.TempDir(), torch.CPU, torch.Float32); err == nil {
		t.Fatal("empty folder loaded")
	}
	s := torch.NewScope()
	defer s.Close()
	m.Forward(s, s.Int64s([]int64{1, 2, 3}, []int64{3}, torch.CPU))
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "(B, T)") {
		t.Fatalf("1-D ids: %v", err)
	}
	s.ResetErr()
	m.Forward(s, s.Zeros([]int64{1, 40}, torch.Int64, torch.CPU))
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "max_position_embeddings") {
		t.Fatalf("too long: %v", err)
	}
	s.ResetErr()
	m.Forward(s, s.Full([]int64{1, 4}, 99, torch.Int64, torch.CPU))
	if err := s.Err(); err == nil {
		t.Fatal("out-of-vocabulary id accepted")
	}
}

func rssKB(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return v
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestTrainingLearnsAndDoesNotLeak trains a tiny model for 1,000 AdamW steps on a
// repeating sequence: the loss must fall far below chance, no tensor handle may outlive
// its step, and resident memory must stay flat after warm-up.
func TestTrainingLearnsAndDoesNotLeak(t *testing.T) {
	cfg := tinyConfig()
	m := mustModel(t, cfg, torch.Float32, 11)
	if err := m.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	state := torch.NewScope()
	defer state.Close()
	params := m.Parameters()
	mom := make([]*torch.Tensor, len(params))
	vel := make([]*torch.Tensor, len(params))
	for i, p := range params {
		mom[i] = state.Zeros(p.Shape(), torch.Float32, torch.CPU)
		vel[i] = state.Zeros(p.Shape(), torch.Float32, torch.CPU)
	}
	in := ids(state, 4, 16, cfg.VocabSize, 0)
	tg := ids(state, 4, 16, cfg.VocabSize, 7) // next token of the period-37 sequence
	live := torch.LiveTensors()
	var first, last float64
	var rssWarm int64
	for step := int64(1); step <= 1000; step++ {
		s := torch.NewScope()
		loss := model.NextTokenLoss(s, m, in, tg)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		if _, err := torch.ClipGradNorm(params, 1); err != nil {
			t.Fatal(err)
		}
		if err := torch.AdamWStep(params, mom, vel, step, torch.AdamWConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}); err != nil {
			t.Fatal(err)
		}
		if err := torch.ZeroGrad(params); err != nil {
			t.Fatal(err)
		}
		v, err := loss.Item()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if step == 1 {
			first = v
		}
		last = v
		if step == 200 {
			rssWarm = rssKB(t)
		}
		if got := torch.LiveTensors(); got != live {
			t.Fatalf("step %d: %d live tensors, want %d", step, got, live)
		}
	}
	grow := rssKB(t) - rssWarm
	t.Logf("loss %.3f -> %.4f; RSS growth over steps 200..1000: %d KB", first, last, grow)
	if first < 3 || last > 0.05 {
		t.Fatalf("loss %.3f -> %.4f: did not learn a repeating sequence (chance is ln 37 = 3.6)", first, last)
	}
	if grow > 16*1024 {
		t.Fatalf("RSS grew by %d KB over 800 steps", grow)
	}
}

// TestCUDATrainingMatchesCPU trains the same model for a few steps on both devices (where
// a GPU is visible) and compares the losses.
func TestCUDATrainingMatchesCPU(t *testing.T) {
	if !torch.CUDAAvailable() {
		t.Skip(torch.CUDAStatus())
	}
	losses := func(dev torch.Device) []float64 {
		m, err := New(tinyConfig(), dev, torch.Float32, 21)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		_ = m.SetRequiresGrad(true)
		st := torch.NewScope()
		defer st.Close()
		params := m.Parameters()
		var mom, vel []*torch.Tensor
		for _, p := range params {
			mom = append(mom, st.Zeros(p.Shape(), torch.Float32, dev))
			vel = append(vel, st.Zeros(p.Shape(), torch.Float32, dev))
		}
		in := st.To(ids(st, 2, 12, 37, 0), torch.Int64, dev)
		tg := st.To(ids(st, 2, 12, 37, 7), torch.Int64, dev)
		var out []float64
		for step := int64(1); step <= 5; step++ {
			s := torch.NewScope()
			l := model.NextTokenLoss(s, m, in, tg)
			if err := l.Backward(); err != nil {
				t.Fatal(err)
			}
			if err := torch.AdamWStep(params, mom, vel, step, torch.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); err != nil {
				t.Fatal(err)
			}
			_ = torch.ZeroGrad(params)
			v, err := l.Item()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
			s.Close()
		}
		return out
	}
	c, g := losses(torch.CPU), losses(torch.CUDA(0))
	for i := range c {
		if math.Abs(c[i]-g[i]) > 1e-3*(1+math.Abs(c[i])) {
			t.Fatalf("step %d: cuda loss %v, cpu loss %v", i+1, g[i], c[i])
		}
	}
	t.Logf("losses cpu %v cuda %v", c, g)
}
