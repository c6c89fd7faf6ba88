package model_test

import (
	"math"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/gguf"
	"github.com/pioneer-ai/pioneer/model/gpt2"
	"github.com/pioneer-ai/pioneer/model/llama"
)

// TestQuantize gives a small Llama, a small Qwen2 (biases on q, k and v) and a small GPT-2
// (Conv1D projections) quantized weights and
// checks where they are used. Under NoGrad, 8 rows of input (within model.QuantizedMaxRows)
// run on them: the logits move, but by no more than 5 % of their range (both
// the weights and the activations are quantized to 8 bits); 20 rows, and anything that
// records gradients, run on the float32 weights and give the float32 logits exactly.
// Every projection and the output projection take quantized weights (the rows are multiples
// of 32 long); a bfloat16 model is refused.
func TestQuantize(t *testing.T) {
	inner := 128
	models := map[string]func() (model.CausalLM, error){
		"llama": func() (model.CausalLM, error) {
			return llama.New(llama.Config{ModelType: "llama", VocabSize: 96, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2,
				NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000,
				TieWordEmbeddings: true, HiddenAct: "silu", InitializerRange: 0.2}, torch.CPU, torch.Float32, 1)
		},
		"qwen2": func() (model.CausalLM, error) { // biases on q, k and v: the stacked bias of a group
			m, err := llama.New(llama.Config{Architectures: []string{"Qwen2ForCausalLM"}, ModelType: "qwen2", VocabSize: 96, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2,
				NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000,
				HiddenAct: "silu", InitializerRange: 0.2}, torch.CPU, torch.Float32, 3)
			if err != nil {
				return nil, err
			}
			for i, name := range m.Names() {
				if strings.HasSuffix(name, ".bias") {
					if err := m.Named(name).Fill(0.1 * float64(i%7-3)); err != nil {
						return nil, err
					}
				}
			}
			return m, nil
		},
		"gpt2": func() (model.CausalLM, error) {
			return gpt2.New(gpt2.Config{ModelType: "gpt2", VocabSize: 96, NEmbd: 64, NLayer: 2, NHead: 4, NInner: &inner, NPositions: 64,
				ActivationFunction: "gelu_new", InitializerRange: 0.2}, torch.CPU, torch.Float32, 2)
		},
	}
	for name, build := range models {
		t.Run(name, func(t *testing.T) {
			m, err := build()
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s := torch.NewScope()
			defer s.Close()
			ids := func(n int) *torch.Tensor {
				v := make([]int64, n)
				for i := range v {
					v[i] = int64((7*i + 3) % 96)
				}
				return s.Int64s(v, []int64{1, int64(n)}, torch.CPU)
			}
			logits := func(n int, grad bool) []float32 {
				t.Helper()
				var out []float32
				run := func() error {
					var err error
					out, err = m.Forward(s, ids(n)).Float32s()
					return err
				}
				var err error
				if grad {
					err = run()
				} else {
					err = torch.NoGrad(run)
				}
				if err == nil {
					err = s.Err()
				}
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			short, long, trained := logits(8, false), logits(20, false), logits(8, true)
			sum, err := model.Quantize(m)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(m.Linears()) + 1; sum.Bits8 != want || sum.Bits4 != 0 || sum.Skipped != 0 {
				t.Fatalf("Quantize = %+v, want all %d projections in 8 bits (random weights)", sum, want)
			}
			got := logits(8, false)
			var lo, hi, diff float64
			for i, v := range short {
				lo, hi = min(lo, float64(v)), max(hi, float64(v))
				diff = max(diff, math.Abs(float64(got[i]-v)))
			}
			t.Logf("quantized logits off by up to %.4g over a range of %.4g", diff, hi-lo)
			if diff == 0 || diff > 0.05*(hi-lo) {
				t.Fatalf("8 rows on quantized weights: logits off by up to %v over a range of %v; want above 0 (quantized weights used) and within 5 %%", diff, hi-lo)
			}
			for what, pair := range map[string][2][]float32{"20 rows": {long, logits(20, false)}, "with gradients": {trained, logits(8, true)}} {
				for i := range pair[0] {
					if pair[0][i] != pair[1][i] {
						t.Fatalf("%s: logit %d = %v, want the float32 weights' %v exactly", what, i, pair[1][i], pair[0][i])
					}
				}
			}
		})
	}
	m, err := llama.New(llama.Config{ModelType: "llama", VocabSize: 96, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 1,
		NumAttentionHeads: 4, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000, HiddenAct: "silu"}, torch.CPU, torch.BFloat16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := model.Quantize(m); err == nil || !strings.Contains(err.Error(), "float32") {
		t.Fatalf("bfloat16 model: got error %v, want one saying quantized weights are made from float32", err)
	}
}

// TestQuantizeHoldsQ4KAndQ4_0 gives a small Llama weights as a Q4_K, Q4_0 or Q4_1 file
// holds them (each projection quantized to that type and back, by model/gguf): every
// projection then takes 4-bit quantized weights (16 evenly spaced levels per block of
// 32, however many of them a block uses); the output projection, random, takes 8.
func TestQuantizeHoldsQ4KAndQ4_0(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.Q4_K, gguf.Q4_0, gguf.Q4_1} {
		t.Run(typ.String(), func(t *testing.T) {
			m, err := llama.New(llama.Config{ModelType: "llama", VocabSize: 96, HiddenSize: 256, IntermediateSize: 512, NumHiddenLayers: 1,
				NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000,
				HiddenAct: "silu", InitializerRange: 0.2}, torch.CPU, torch.Float32, 4)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s := torch.NewScope()
			defer s.Close()
			for name, l := range m.Linears() {
				w := l.W
				v, err := w.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				raw, err := gguf.Quantize(typ, v)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				back, err := gguf.Dequantize(typ, raw, len(v))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := w.CopyFrom(s.Float32s(back, w.Shape(), torch.CPU)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			sum, err := model.Quantize(m)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(m.Linears()); sum.Bits4 != want || sum.Bits8 != 1 {
				t.Fatalf("Quantize = %+v, want the %d projections in 4 bits and the random output projection in 8", sum, want)
			}
		})
	}
}
