package torch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// TestQuantize checks the encodings: random rows take 8 bits and no weight is off by more
// than half its block's scale; blocks built as GGUF's Q4_1 (16 levels from a minimum) take
// 4 bits and come back within float rounding, as do blocks built as Q4_K's (16 levels
// of a step, of which a block uses only some), and Q8_0 blocks (a scale times integers
// up to ±127) in 8 bits; blocks of zeros and constant blocks take 4 bits, exactly; rows
// whose length is not a multiple of 32 are refused.
func TestQuantize(t *testing.T) {
	s := scope(t)
	r := rand.New(rand.NewPCG(5, 6))
	const out, in = 37, 96
	nb := in / 32
	check := func(name string, wv []float32, bits int, tol func(block int, scale float32) float64) {
		t.Helper()
		w := s.Float32s(wv, []int64{out, in}, torch.CPU)
		q := s.Quantize(w)
		if err := s.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Bits != bits {
			t.Fatalf("%s: %d bits, want %d", name, q.Bits, bits)
		}
		shapeIs(t, name+" q", q.Q, out, int64(in*bits/8))
		shapeIs(t, name+" scale", q.Scale, out, int64(nb))
		shapeIs(t, name+" offset", q.Offset, out, int64(nb))
		back, scales := f32(t, q.Dequantize(s)), f32(t, q.Scale)
		for i, v := range wv {
			b := i / 32
			// Beyond the encoding's own error, a few float32 roundings of the value.
			if d := math.Abs(float64(back[i] - v)); d > tol(b, scales[b])+3e-7*math.Abs(float64(v)) {
				t.Fatalf("%s: weight %d = %v came back as %v (block scale %v)", name, i, v, back[i], scales[b])
			}
		}
	}
	random := normals(r, out*in)
	check("random", random, 8, func(_ int, scale float32) float64 { return float64(scale)/2 + 1e-6 })

	q41 := make([]float32, out*in)
	steps := make([]float64, out*nb)
	for b := range steps {
		d, m := 0.01+0.1*r.Float64(), r.NormFloat64()*0.1
		steps[b] = d
		for i := 0; i < 32; i++ {
			lvl := r.IntN(16)
			if i == 0 {
				lvl = 0
			} else if i == 1 {
				lvl = 15
			}
			q41[b*32+i] = float32(d*float64(lvl) + m)
		}
	}
	check("q4_1 blocks", q41, 4, func(b int, _ float32) float64 { return 1e-5 * steps[b] })

	// Q4_K's sub-blocks as its dequantization computes them (float32(d·q) - m): 16
	// levels, of which a block may use any subset; and some using only levels two apart.
	q4k := make([]float32, out*in)
	for b := range steps {
		d, m := float32(0.001+0.02*r.Float64()), float32(r.Float64()*0.05)
		steps[b] = float64(d)
		lo, hi := r.IntN(8), 8+r.IntN(8)
		for i := 0; i < 32; i++ {
			lvl := lo + r.IntN(hi-lo+1)
			if b%5 == 0 {
				lvl = 2 * r.IntN(8)
			}
			q4k[b*32+i] = float32(d*float32(lvl)) - m
		}
	}
	check("q4_k blocks", q4k, 4, func(b int, _ float32) float64 { return 1e-5 * steps[b] })

	q80 := make([]float32, out*in)
	for b := range steps {
		d := 0.001 + 0.01*r.Float64()
		steps[b] = d
		for i := 0; i < 32; i++ {
			lvl := r.IntN(255) - 127
			if i == 3 {
				lvl = 127
			}
			q80[b*32+i] = float32(d * float64(lvl))
		}
	}
	check("q8_0 blocks", q80, 8, func(b int, _ float32) float64 { return 1e-5 * steps[b] })

	flat := make([]float32, out*in)
	for i := range flat {
		if i/32%2 == 1 {
			flat[i] = 0.25
		}
	}
	check("zero and constant blocks", flat, 4, func(int, float32) float64 { return 0 })

	s.Quantize(s.Float32s(normals(r, 4*40), []int64{4, 40}, torch.CPU))
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Fatalf("rows of 40: got error %v, want one saying rows must be a multiple of 32 long", err)
	}
}

// TestQuantizedLinear checks x·wᵀ (+ b) with quantized weights, 8 and 4 bits,: against a float64 product of the
// weights they hold with x quantized as the product quantizes it (blocks of 32, scale
// max|x|/127; the offsets' term with x itself), to float32 rounding; and against the
// exact product of x and the weights held, to the activations' quantization error (half
// a step per value: at most Σ_b dx_b/2·Σ_i |w_i|). For 1 to 65 rows of x (the kernel
// takes four rows at a time, so 1 to 5 cover every remainder), a leading shape of two
// sizes, 8-bit weights with asymmetric blocks (random rows) and symmetric ones (a row of
// Q8_0 levels), 4-bit weights (Q4_1 blocks), and x with a block of zeros. It must refuse an input that records a gradient
// and rows of the wrong length.
func TestQuantizedLinear(t *testing.T) {
	s := scope(t)
	r := rand.New(rand.NewPCG(7, 8))
	const in, out = 576, 200
	wv, bv := normals(r, out*in), normals(r, out)
	for i := 0; i < in; i++ { // row 1: a symmetric block layout
		wv[in+i] = float32(r.IntN(255)-127) * 0.01
	}
	q4 := make([]float32, out*in) // Q4_1 blocks: 4 bits
	for b := 0; b < out*in/32; b++ {
		d, m := 0.01+0.1*r.Float64(), r.NormFloat64()*0.1
		for i := 0; i < 32; i++ {
			lvl := r.IntN(16)
			if i < 2 {
				lvl = 15 * i
			}
			q4[b*32+i] = float32(d*float64(lvl) + m)
		}
	}
	for _, c := range []struct {
		bits int
		vals []float32
	}{{8, wv}, {4, q4}} {
		w := s.Quantize(s.Float32s(c.vals, []int64{out, in}, torch.CPU))
		if err := s.Err(); err != nil || w.Bits != c.bits {
			t.Fatalf("quantize: %d bits (%v), want %d", w.Bits, err, c.bits)
		}
		linearChecks(t, s, r, w, bv)
	}
	w := s.Quantize(s.Float32s(wv, []int64{out, in}, torch.CPU))
	x := s.Float32s(normals(r, in), []int64{1, in}, torch.CPU)
	requireGrad(t, x)
	s.QuantizedLinear(x, w, nil)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "gradient") {
		t.Fatalf("x recording a gradient: got error %v, want one about the gradient", err)
	}
	s.QuantizedLinear(s.Float32s(normals(r, 64), []int64{1, 64}, torch.CPU), w, nil)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "576") {
		t.Fatalf("rows of 64: got error %v, want one naming the 576 the weight takes", err)
	}
}

// linearChecks runs TestQuantizedLinear's products with weight w (out x in = 200 x 576).
func linearChecks(t *testing.T, s *torch.Scope, r *rand.Rand, w *torch.QuantizedWeight, bv []float32) {
	t.Helper()
	const in, out = 576, 200
	held, scales, offsets := f32(t, w.Dequantize(s)), f32(t, w.Scale), f32(t, w.Offset)
	for _, shape := range [][]int64{{1, in}, {2, in}, {3, in}, {4, in}, {5, in}, {16, in}, {2, 3, in}, {65, in}} {
		rows := 1
		for _, d := range shape[:len(shape)-1] {
			rows *= int(d)
		}
		xv := normals(r, rows*in)
		for i := 32; i < 64; i++ {
			xv[i] = 0
		}
		for _, withBias := range []bool{false, true} {
			name := fmt.Sprintf("%d-bit linear %dx%d x %v bias %v", w.Bits, out, in, shape, withBias)
			var b *torch.Tensor
			if withBias {
				b = s.Float32s(bv, []int64{out}, torch.CPU)
			}
			y := s.QuantizedLinear(s.Float32s(xv, shape, torch.CPU), w, b)
			shapeIs(t, name, y, append(append([]int64{}, shape[:len(shape)-1]...), out)...)
			got := f32(t, y)
			for i := 0; i < rows; i++ {
				for j := 0; j < out; j++ {
					want, exact, bound := 0.0, 0.0, 0.0
					if withBias {
						want, exact = float64(bv[j]), float64(bv[j])
					}
					for blk := 0; blk < in/32; blk++ {
						xb, wb := xv[i*in+blk*32:i*in+blk*32+32], held[j*in+blk*32:j*in+blk*32+32]
						var amax float32
						for _, v := range xb {
							amax = max(amax, float32(math.Abs(float64(v))))
						}
						dx := amax / 127
						var dot, xsum, wabs float64
						for k, v := range xb {
							qx := 0.0
							if dx > 0 {
								qx = math.RoundToEven(float64(v / dx))
							}
							qw := math.Round(float64((wb[k] - offsets[j*in/32+blk]) / scales[j*in/32+blk]))
							dot += qx * qw
							xsum += float64(v)
							exact += float64(v) * float64(wb[k])
							wabs += math.Abs(float64(wb[k]))
						}
						want += float64(scales[j*in/32+blk])*float64(dx)*dot + float64(offsets[j*in/32+blk])*xsum
						bound += float64(dx) / 2 * wabs
					}
					g := float64(got[i*out+j])
					if math.Abs(g-want) > 1e-4*(1+math.Abs(want)) {
						t.Fatalf("%s: [%d,%d] = %v, want %v", name, i, j, g, want)
					}
					if math.Abs(g-exact) > bound+1e-4*(1+math.Abs(exact)) {
						t.Fatalf("%s: [%d,%d] = %v, off the exact %v by more than the quantization's %v", name, i, j, g, exact, bound)
					}
				}
			}
		}
	}

}

// BenchmarkQuantizedLinear compares float32, 8-bit and 4-bit weights on a SmolLM2 MLP
// projection (1536 x 576) and its output projection (49152 x 576) at a few rows of input.
func BenchmarkQuantizedLinear(b *testing.B) {
	s := torch.NewScope()
	defer s.Close()
	r := rand.New(rand.NewPCG(9, 10))
	for _, out := range []int64{1536, 49152} {
		const in = 576
		wv := normals(r, int(out*in))
		w := s.Float32s(wv, []int64{out, in}, torch.CPU)
		q8 := s.Quantize(w)
		for i := range wv { // 16 levels a block: 4 bits
			wv[i] = float32(min(3.5, max(-4, math.Round(float64(wv[i])*2)/2)))
			if i%32 == 0 {
				wv[i] = -4
			} else if i%32 == 1 {
				wv[i] = 3.5
			}
		}
		q4 := s.Quantize(s.Float32s(wv, []int64{out, in}, torch.CPU))
		if q4 == nil || q4.Bits != 4 {
			b.Fatal("the 4-bit weight took 8 bits")
		}
		for _, rows := range []int64{1, 4, 16} {
			x := s.Float32s(normals(r, int(rows*in)), []int64{rows, in}, torch.CPU)
			b.Run(fmt.Sprintf("f32_%dx%d_rows%d", out, in, rows), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					s.Linear(x, w, nil).Free()
				}
			})
			for _, q := range []*torch.QuantizedWeight{q8, q4} {
				b.Run(fmt.Sprintf("q%d_%dx%d_rows%d", q.Bits, out, in, rows), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						s.QuantizedLinear(x, q, nil).Free()
					}
				})
			}
		}
	}
	if err := s.Err(); err != nil {
		b.Fatal(err)
	}
}
