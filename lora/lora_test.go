package lora_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// peftRef is testdata/peft/CASE/reference.json from scripts/gen_peft_fixtures.py (PEFT 0.21.2).
type peftRef struct {
	BaseModel     string             `json:"base_model"`
	Scaling       map[string]float64 `json:"scaling"`
	Prompts       [][]int            `json:"prompts"`
	Logits        [][][]float64      `json:"logits"`
	TrainInputIDs [][]int64          `json:"train_input_ids"`
	TrainLabels   [][]int64          `json:"train_labels"`
	TrainLoss     float64            `json:"train_loss"`
	Optimizer     struct {
		LR          float64   `json:"lr"`
		Betas       []float64 `json:"betas"`
		Eps         float64   `json:"eps"`
		WeightDecay float64   `json:"weight_decay"`
	} `json:"optimizer"`
}

var cases = []string{"llama_all", "qwen3_qv_rslora"}

func loadCase(t *testing.T, name string) (peftRef, model.CausalLM) {
	t.Helper()
	var ref peftRef
	b, err := os.ReadFile(filepath.Join("../testdata/peft", name, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(filepath.Join("..", ref.BaseModel), torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return ref, m
}

func logits(t *testing.T, m model.CausalLM, ids []int) []float32 {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	v := make([]int64, len(ids))
	for i, id := range ids {
		v[i] = int64(id)
	}
	var out []float32
	if err := torch.NoGrad(func() error {
		var err error
		out, err = m.Forward(s, s.Int64s(v, []int64{1, int64(len(v))}, torch.CPU)).Float32s()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func maxDiff(a []float32, b [][]float64) float64 {
	V := len(b[0])
	var d float64
	for t, row := range b {
		for v, want := range row {
			d = math.Max(d, math.Abs(float64(a[t*V+v])-want))
		}
	}
	return d
}

func TestPEFTAdapterLogitsAndMerge(t *testing.T) {
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			ref, m := loadCase(t, name)
			base := logits(t, m, ref.Prompts[0])
			set, err := lora.Load(filepath.Join("../testdata/peft", name, "adapter"), m)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			for _, a := range set.Adapters {
				kind := a.Path[strings.LastIndex(a.Path, ".")+1:]
				if want := ref.Scaling[kind]; math.Abs(a.Scale-want) > 1e-12 {
					t.Fatalf("%s: scale %v, PEFT %v", a.Path, a.Scale, want)
				}
			}
			for i, p := range ref.Prompts {
				if d := maxDiff(logits(t, m, p), ref.Logits[i]); d > 1e-4 {
					t.Fatalf("prompt %d: max |logit - PEFT| = %v", i, d)
				}
			}
			if err := set.Merge(); err != nil {
				t.Fatal(err)
			}
			for _, l := range m.Linears() {
				if l.Adapter != nil {
					t.Fatal("an adapter is still attached after Merge")
				}
			}
			if d := maxDiff(logits(t, m, ref.Prompts[0]), ref.Logits[0]); d > 1e-4 {
				t.Fatalf("merged: max |logit - PEFT| = %v", d)
			}
			if err := set.Unmerge(); err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(logits(t, m, ref.Prompts[0]), ref.Logits[0]); d > 1e-4 {
				t.Fatalf("unmerged: max |logit - PEFT| = %v", d)
			}
			set.Close()
			after := logits(t, m, ref.Prompts[0])
			for i := range base {
				if math.Abs(float64(after[i]-base[i])) > 1e-5 {
					t.Fatalf("base logits not restored after merge/unmerge/close: %v vs %v", after[i], base[i])
				}
			}
		})
	}
}

// TestOneTrainingStepMatchesPEFT: loss, LoRA gradients and AdamW-updated LoRA weights
// of one step equal PEFT + torch.optim.AdamW's.
func TestOneTrainingStepMatchesPEFT(t *testing.T) {
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			ref, m := loadCase(t, name)
			dir := filepath.Join("../testdata/peft", name)
			set, err := lora.Load(filepath.Join(dir, "adapter"), m)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			params := set.Parameters()
			for _, p := range params {
				if err := p.SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
			s := torch.NewScope()
			defer s.Close()
			B, T := int64(len(ref.TrainInputIDs)), int64(len(ref.TrainInputIDs[0]))
			var ids, labels []int64
			for b := range ref.TrainInputIDs {
				ids = append(ids, ref.TrainInputIDs[b]...)
				labels = append(labels, ref.TrainLabels[b]...)
			}
			// Hugging Face's causal-LM loss: position t predicts label t+1; mean over labels != -100.
			lg := m.Forward(s, s.Int64s(ids, []int64{B, T}, torch.CPU))
			V := lg.Shape()[2]
			pred := s.Reshape(s.Slice(lg, 1, 0, T-1, 1), -1, V)
			tgt := s.Reshape(s.Slice(s.Int64s(labels, []int64{B, T}, torch.CPU), 1, 1, T, 1), -1)
			loss := s.CrossEntropy(pred, tgt, -100, torch.ReduceMean)
			lv, err := loss.Item()
			if err != nil || math.Abs(lv-ref.TrainLoss) > 1e-5 {
				t.Fatalf("loss %v (%v), PEFT %v", lv, err, ref.TrainLoss)
			}
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			grads, _, err := s.Load(filepath.Join(dir, "grads.safetensors"), torch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			names := set.Names()
			for i, p := range params {
				compare(t, "grad "+names[i], s.Grad(p), grads[names[i]], 1e-5)
			}
			mom := make([]*torch.Tensor, len(params))
			vel := make([]*torch.Tensor, len(params))
			for i, p := range params {
				mom[i] = s.Zeros(p.Shape(), torch.Float32, torch.CPU)
				vel[i] = s.Zeros(p.Shape(), torch.Float32, torch.CPU)
			}
			o := ref.Optimizer
			if err := torch.AdamWStep(params, mom, vel, 1, torch.AdamWConfig{LR: o.LR, Beta1: o.Betas[0], Beta2: o.Betas[1], Eps: o.Eps, WeightDecay: o.WeightDecay}); err != nil {
				t.Fatal(err)
			}
			updated, _, err := s.Load(filepath.Join(dir, "updated.safetensors"), torch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range params {
				compare(t, "updated "+names[i], p, updated[names[i]], 1e-6)
			}
			// Only the adapters learned: the base model has no gradients.
			for _, n := range m.Names() {
				if g := s.Grad(m.Named(n)); g != nil {
					t.Fatalf("base weight %s received a gradient", n)
				}
			}
		})
	}
}

func compare(t *testing.T, what string, got, want *torch.Tensor, tol float64) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("%s: missing (got %v, want %v)", what, got, want)
	}
	a, err := got.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	b, err := want.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol*(1+math.Abs(float64(b[i]))) {
			t.Fatalf("%s[%d] = %v, PEFT %v", what, i, a[i], b[i])
		}
	}
}

func TestSaveLoadRoundTripInPEFTLayout(t *testing.T) {
	ref, m := loadCase(t, "qwen3_qv_rslora")
	set, err := lora.Load("../testdata/peft/qwen3_qv_rslora/adapter", m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := set.Save(dir); err != nil {
		t.Fatal(err)
	}
	want := logits(t, m, ref.Prompts[1])
	set.Close()
	// Same tensor names and shapes as PEFT wrote.
	s := torch.NewScope()
	defer s.Close()
	ours, _, err := s.Load(filepath.Join(dir, "adapter_model.safetensors"), torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	theirs, _, err := s.Load("../testdata/peft/qwen3_qv_rslora/adapter/adapter_model.safetensors", torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) != len(theirs) {
		t.Fatalf("%d tensors, PEFT wrote %d", len(ours), len(theirs))
	}
	for n, w := range theirs {
		compare(t, n, ours[n], w, 0)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"peft_type", "r", "lora_alpha", "target_modules", "use_rslora", "rank_pattern", "alpha_pattern", "task_type", "bias"} {
		if _, ok := cfg[k]; !ok {
			t.Fatalf("adapter_config.json lacks %s", k)
		}
	}
	again, err := lora.Load(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := logits(t, m, ref.Prompts[1])
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("reloaded adapter changes logit %d: %v vs %v", i, got[i], want[i])
		}
	}
}

func TestAttachInitAndErrors(t *testing.T) {
	ref, m := loadCase(t, "llama_all")
	base := logits(t, m, ref.Prompts[0])
	cfg := lora.Config{R: 8, Alpha: 16, TargetModules: lora.Targets{Names: []string{"q_proj", "down_proj"}}}
	set, err := lora.Attach(m, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Adapters) != 4 {
		t.Fatalf("%d adapters, want 4 (2 layers x q_proj, down_proj)", len(set.Adapters))
	}
	for _, a := range set.Adapters {
		in := a.A.Shape()[1]
		vals, _ := a.A.Float32s()
		for _, v := range vals {
			if math.Abs(float64(v)) > 1/math.Sqrt(float64(in)) {
				t.Fatalf("%s: A value %v outside the Kaiming bound", a.Path, v)
			}
		}
		if a.Scale != 2 {
			t.Fatalf("scale %v, want alpha/r = 2", a.Scale)
		}
	}
	got := logits(t, m, ref.Prompts[0])
	for i := range got {
		if got[i] != base[i] {
			t.Fatal("a fresh adapter (B = 0) changed the output")
		}
	}
	if _, err := lora.Attach(m, cfg, 1); err == nil || !strings.Contains(err.Error(), "already has an adapter") {
		t.Fatalf("second attach: %v", err)
	}
	set.Close()
	for _, bad := range []lora.Config{
		{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: []string{"c_attn"}}},
		{R: 0, Alpha: 8, TargetModules: lora.Targets{Names: []string{"q_proj"}}},
		{R: 4, Alpha: 8},
		{R: 4, Alpha: 8, TargetModules: lora.Targets{Regex: "("}},
	} {
		if _, err := lora.Attach(m, bad, 1); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	_, err = lora.Attach(m, lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: []string{"c_attn"}}}, 1)
	if !strings.Contains(err.Error(), "match no projection") {
		t.Fatalf("no match: %v", err)
	}
	// A rank above a projection's smaller side (the fixture's hidden size is 32) is
	// refused before anything is allocated.
	_, err = lora.Attach(m, lora.Config{R: 100000, Alpha: 8, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, 1)
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("rank 100000: %v", err)
	}
	// A regex target, as PEFT allows.
	set, err = lora.Attach(m, lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Regex: `model\.layers\.1\.mlp\.(up|gate)_proj`}}, 1)
	if err != nil || len(set.Adapters) != 2 {
		t.Fatalf("regex target: %v", err)
	}
	// Merging a non-finite adapter is refused and changes nothing.
	_ = set.Adapters[0].B.Fill(math.Inf(1))
	_ = set.Adapters[0].A.Fill(1)
	before, _ := m.Named("model.layers.1.mlp.gate_proj.weight").Float32s()
	if err := set.Merge(); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("merge of an infinite adapter: %v", err)
	}
	after, _ := m.Named("model.layers.1.mlp.gate_proj.weight").Float32s()
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("a refused merge changed the weights")
		}
	}
	set.Close()
}

// TestConv1DMerge: on GPT-2's (in, out) weights, merging gives the adapter's output.
func TestConv1DMerge(t *testing.T) {
	m, err := model.Load("../testdata/models/gpt2", torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	set, err := lora.Attach(m, lora.Config{R: 3, Alpha: 6, TargetModules: lora.Targets{Names: []string{"c_attn", "c_fc"}}, FanInFanOut: true}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, a := range set.Adapters {
		if err := a.B.Fill(0.05); err != nil {
			t.Fatal(err)
		}
	}
	ids := []int{30, 42, 30, 14, 71}
	adapted := logits(t, m, ids)
	if err := set.Merge(); err != nil {
		t.Fatal(err)
	}
	merged := logits(t, m, ids)
	for i := range adapted {
		if math.Abs(float64(adapted[i]-merged[i])) > 1e-4 {
			t.Fatalf("logit %d: adapter %v, merged %v", i, adapted[i], merged[i])
		}
	}
}
