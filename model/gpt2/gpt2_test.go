package gpt2

import (
	"os"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

const tinyRandom = "../../../shared/data/models/tiny-random-gpt2"

func TestLoadSharedTinyRandomGPT2(t *testing.T) {
	if _, err := os.Stat(tinyRandom); err != nil {
		t.Skip("shared data not present")
	}
	m, err := Load(tinyRandom, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info := m.Info(); info.VocabSize != 1000 || info.Layers != 5 || info.Hidden != 32 {
		t.Fatalf("info %+v", info)
	}
	s := torch.NewScope()
	defer s.Close()
	logits := m.Forward(s, s.Int64s([]int64{1, 2, 3, 4}, []int64{1, 4}, torch.CPU))
	if sh := logits.Shape(); len(sh) != 3 || sh[2] != 1000 {
		t.Fatalf("logits %v (%v)", sh, s.Err())
	}
}

func TestGradientsFiniteDifference(t *testing.T) {
	m, err := New(Config{VocabSize: 20, NEmbd: 8, NLayer: 2, NHead: 2, NPositions: 16, InitializerRange: 0.3}, torch.CPU, torch.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, p := range m.Parameters() {
		_ = p.SetRequiresGrad(true)
	}
	s := torch.NewScope()
	defer s.Close()
	ids := s.Int64s([]int64{1, 5, 7, 2, 9, 3}, []int64{2, 3}, torch.CPU)
	tg := s.Int64s([]int64{5, 7, 2, 9, 3, 4}, []int64{6}, torch.CPU)
	loss := func(sc *torch.Scope) *torch.Tensor {
		return sc.CrossEntropy(sc.Reshape(m.Forward(sc, ids), -1, 20), tg, -100, torch.ReduceMean)
	}
	if err := loss(s).Backward(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
		"transformer.h.1.mlp.c_fc.bias", "transformer.h.1.attn.c_proj.weight", "transformer.ln_f.weight", "transformer.h.0.ln_1.bias"} {
		p := m.Named(name)
		g, _ := s.Grad(p).Float64s()
		vals, _ := p.Float64s()
		for _, j := range []int{0, len(vals) - 1} {
			eval := func(x float64) float64 {
				vals[j] = x
				_ = torch.NoGrad(func() error { return p.CopyFrom(s.Float64s(vals, p.Shape(), torch.CPU)) })
				ls := torch.NewScope()
				defer ls.Close()
				var v float64
				_ = torch.NoGrad(func() error { v, _ = loss(ls).Item(); return nil })
				return v
			}
			orig := vals[j]
			num := (eval(orig+1e-6) - eval(orig-1e-6)) / 2e-6
			eval(orig)
			if d := num - g[j]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("%s[%d]: backward %v, finite difference %v", name, j, g[j], num)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []Config{
		{VocabSize: 10, NEmbd: 10, NLayer: 1, NHead: 3, NPositions: 8},
		{VocabSize: 10, NEmbd: 8, NLayer: 1, NHead: 2, NPositions: 8, ActivationFunction: "swish"},
		{VocabSize: 0, NEmbd: 8, NLayer: 1, NHead: 2, NPositions: 8},
	}
	for _, c := range bad {
		if _, err := New(c, torch.CPU, torch.Float32, 1); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
	dir := t.TempDir()
	_ = os.WriteFile(dir+"/config.json", []byte(`{"n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 10}`), 0o644)
	if _, err := Load(dir, torch.CPU, torch.Float32); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("missing weights: %v", err)
	}
}
