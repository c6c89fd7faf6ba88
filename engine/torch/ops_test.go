package torch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

const tol = 1e-5

// f32 copies t out, failing the test on error.
func f32(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatalf("Float32s: %v", err)
	}
	return v
}

func near(t *testing.T, what string, got []float32, want []float64, eps float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > eps*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

func shapeIs(t *testing.T, what string, x *torch.Tensor, want ...int64) {
	t.Helper()
	got := x.Shape()
	if len(got) != len(want) {
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: shape %v, want %v", what, got, want)
		}
	}
}

func scope(t *testing.T) *torch.Scope {
	t.Helper()
	s := torch.NewScope()
	t.Cleanup(func() {
		if err := s.Err(); err != nil {
			t.Errorf("scope error: %v", err)
		}
		s.Close()
	})
	return s
}

func TestElementwiseAndBroadcast(t *testing.T) {
	s := scope(t)
	a := s.Float32s([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, torch.CPU)
	b := s.Float32s([]float32{10, 20, 30}, []int64{3}, torch.CPU)
	// broadcasting b over rows: [[11 22 33] [14 25 36]]
	near(t, "add", f32(t, s.Add(a, b)), []float64{11, 22, 33, 14, 25, 36}, tol)
	near(t, "sub", f32(t, s.Sub(a, b)), []float64{-9, -18, -27, -6, -15, -24}, tol)
	near(t, "mul", f32(t, s.Mul(a, b)), []float64{10, 40, 90, 40, 100, 180}, tol)
	near(t, "div", f32(t, s.Div(b, a)), []float64{10, 10, 10, 2.5, 4, 5}, tol)
	near(t, "neg", f32(t, s.Neg(a)), []float64{-1, -2, -3, -4, -5, -6}, tol)
	near(t, "addscalar", f32(t, s.AddScalar(a, 0.5)), []float64{1.5, 2.5, 3.5, 4.5, 5.5, 6.5}, tol)
	near(t, "mulscalar", f32(t, s.MulScalar(a, -2)), []float64{-2, -4, -6, -8, -10, -12}, tol)
	near(t, "powscalar", f32(t, s.PowScalar(a, 2)), []float64{1, 4, 9, 16, 25, 36}, tol)
	near(t, "square", f32(t, s.Square(a)), []float64{1, 4, 9, 16, 25, 36}, tol)
	near(t, "maximum", f32(t, s.Maximum(a, s.Scalar(3.5, torch.Float32, torch.CPU))), []float64{3.5, 3.5, 3.5, 4, 5, 6}, tol)
	near(t, "clamp", f32(t, s.Clamp(a, 2, 4)), []float64{2, 2, 3, 4, 4, 4}, tol)
	near(t, "clamp lo only", f32(t, s.Clamp(a, 5, math.NaN())), []float64{5, 5, 5, 5, 5, 6}, tol)

	x := []float64{-2, -0.5, 0, 0.5, 1, 3}
	xs := make([]float32, len(x))
	for i := range x {
		xs[i] = float32(x[i])
	}
	xt := s.Float32s(xs, []int64{6}, torch.CPU)
	apply := func(f func(float64) float64) []float64 {
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = f(v)
		}
		return out
	}
	sigmoid := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	near(t, "exp", f32(t, s.Exp(xt)), apply(math.Exp), tol)
	near(t, "tanh", f32(t, s.Tanh(xt)), apply(math.Tanh), tol)
	near(t, "sigmoid", f32(t, s.Sigmoid(xt)), apply(sigmoid), tol)
	near(t, "relu", f32(t, s.Relu(xt)), apply(func(v float64) float64 { return math.Max(v, 0) }), tol)
	near(t, "silu", f32(t, s.Silu(xt)), apply(func(v float64) float64 { return v * sigmoid(v) }), tol)
	near(t, "gelu", f32(t, s.Gelu(xt)), apply(func(v float64) float64 { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }), tol)
	near(t, "gelu_tanh", f32(t, s.GeluTanh(xt)), apply(func(v float64) float64 {
		return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
	}), tol)
	near(t, "sin", f32(t, s.Sin(xt)), apply(math.Sin), tol)
	near(t, "cos", f32(t, s.Cos(xt)), apply(math.Cos), tol)
	near(t, "abs", f32(t, s.Abs(xt)), apply(math.Abs), tol)
	pos := s.AddScalar(s.Abs(xt), 1)
	near(t, "log", f32(t, s.Log(pos)), apply(func(v float64) float64 { return math.Log(math.Abs(v) + 1) }), tol)
	near(t, "sqrt", f32(t, s.Sqrt(pos)), apply(func(v float64) float64 { return math.Sqrt(math.Abs(v) + 1) }), tol)
	near(t, "rsqrt", f32(t, s.Rsqrt(pos)), apply(func(v float64) float64 { return 1 / math.Sqrt(math.Abs(v)+1) }), tol)

	gt, err := s.GtScalar(xt, 0).Bools()
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, false, false, true, true, true}
	for i := range want {
		if gt[i] != want[i] {
			t.Fatalf("gt: %v, want %v", gt, want)
		}
	}
	near(t, "where", f32(t, s.Where(s.GtScalar(xt, 0), xt, s.Zeros(nil, torch.Float32, torch.CPU))), []float64{0, 0, 0, 0.5, 1, 3}, tol)
	near(t, "masked_fill", f32(t, s.MaskedFill(xt, s.LtScalar(xt, 0), -9)), []float64{-9, -9, 0, 0.5, 1, 3}, tol)
}

func TestReductions(t *testing.T) {
	s := scope(t)
	a := s.Float32s([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, torch.CPU)
	near(t, "sum", f32(t, s.Sum(a)), []float64{21}, tol)
	near(t, "mean", f32(t, s.Mean(a)), []float64{3.5}, tol)
	near(t, "sum dim0", f32(t, s.SumDims(a, []int64{0}, false)), []float64{5, 7, 9}, tol)
	r := s.SumDims(a, []int64{1}, true)
	shapeIs(t, "sum keepdim", r, 2, 1)
	near(t, "sum dim1", f32(t, r), []float64{6, 15}, tol)
	near(t, "mean dim1", f32(t, s.MeanDims(a, []int64{1}, false)), []float64{2, 5}, tol)
	near(t, "amax", f32(t, s.Amax(a, []int64{1}, false)), []float64{3, 6}, tol)
	near(t, "amin", f32(t, s.Amin(a, []int64{0}, false)), []float64{1, 2, 3}, tol)
	// var of {1,2,3} (population) = 2/3
	near(t, "var", f32(t, s.Var(a, []int64{1}, false)), []float64{2.0 / 3, 2.0 / 3}, tol)
	lse := math.Log(math.Exp(1) + math.Exp(2) + math.Exp(3))
	near(t, "logsumexp", f32(t, s.LogSumExp(a, []int64{1}, false)), []float64{lse, lse + 3}, tol)
	am, err := s.Argmax(s.Float32s([]float32{1, 9, 3, 7, 2, 8}, []int64{2, 3}, torch.CPU), 1, false).Int64s()
	if err != nil || am[0] != 1 || am[1] != 2 {
		t.Fatalf("argmax = %v, %v", am, err)
	}
	sv, si := s.Sort(s.Float32s([]float32{3, 1, 2}, []int64{3}, torch.CPU), 0, true)
	near(t, "sort", f32(t, sv), []float64{3, 2, 1}, 0)
	if idx, _ := si.Int64s(); idx[0] != 0 || idx[1] != 2 || idx[2] != 1 {
		t.Fatalf("sort indices %v", idx)
	}
	near(t, "cumsum", f32(t, s.Cumsum(a, 1)), []float64{1, 3, 6, 4, 9, 15}, tol)
	v, i := s.TopK(s.Float32s([]float32{1, 9, 3, 7}, []int64{4}, torch.CPU), 2, 0)
	near(t, "topk values", f32(t, v), []float64{9, 7}, tol)
	if idx, _ := i.Int64s(); idx[0] != 1 || idx[1] != 3 {
		t.Fatalf("topk indices %v", idx)
	}
}

func TestShapes(t *testing.T) {
	s := scope(t)
	a := s.Arange(0, 24, 1, torch.Float32, torch.CPU)
	b := s.Reshape(a, 2, 3, 4)
	shapeIs(t, "reshape", b, 2, 3, 4)
	shapeIs(t, "reshape -1", s.Reshape(a, 4, -1), 4, 6)
	tr := s.Transpose(b, 1, 2) // (2,4,3): tr[0][1][2] = b[0][2][1] = 9
	shapeIs(t, "transpose", tr, 2, 4, 3)
	near(t, "transpose values", f32(t, s.Select(s.Select(tr, 0, 0), 0, 1)), []float64{1, 5, 9}, tol)
	p := s.Permute(b, 2, 0, 1)
	shapeIs(t, "permute", p, 4, 2, 3)
	sl := s.Slice(b, 2, 1, 4, 2) // columns 1 and 3
	shapeIs(t, "slice", sl, 2, 3, 2)
	near(t, "slice values", f32(t, s.Select(s.Select(sl, 0, 0), 0, 1)), []float64{5, 7}, tol)
	c := s.Cat([]*torch.Tensor{b, b}, 1)
	shapeIs(t, "cat", c, 2, 6, 4)
	st := s.Stack([]*torch.Tensor{a, a, a}, 0)
	shapeIs(t, "stack", st, 3, 24)
	u := s.Unsqueeze(a, 0)
	shapeIs(t, "unsqueeze", u, 1, 24)
	shapeIs(t, "squeeze", s.Squeeze(u, 0), 24)
	shapeIs(t, "expand", s.Expand(s.Reshape(a, 1, 24), 5, -1), 5, 24)
	idx := s.Int64s([]int64{2, 0}, []int64{2}, torch.CPU)
	rows := s.IndexSelect(s.Reshape(a, 6, 4), 0, idx)
	near(t, "index_select", f32(t, rows), []float64{8, 9, 10, 11, 0, 1, 2, 3}, tol)
	// index_add: rows 2 and 0 of a zero (3, 4) get the two selected rows added, row 2 twice
	src := s.Cat([]*torch.Tensor{rows, s.Slice(rows, 0, 0, 1, 1)}, 0) // rows 2, 0, 2 of a
	into := s.IndexAdd(s.Zeros([]int64{3, 4}, torch.Float32, torch.CPU), 0, s.Int64s([]int64{2, 0, 2}, []int64{3}, torch.CPU), src)
	near(t, "index_add", f32(t, into), []float64{0, 1, 2, 3, 0, 0, 0, 0, 16, 18, 20, 22}, tol)
	// gather along dim 1: out[i][j] = m[i][g[i][j]]
	m := s.Float32s([]float32{1, 2, 3, 4}, []int64{2, 2}, torch.CPU)
	g := s.Int64s([]int64{0, 0, 1, 0}, []int64{2, 2}, torch.CPU)
	near(t, "gather", f32(t, s.Gather(m, 1, g)), []float64{1, 1, 4, 3}, tol)
	near(t, "tril", f32(t, s.Tril(s.Ones([]int64{3, 3}, torch.Float32, torch.CPU), 0)), []float64{1, 0, 0, 1, 1, 0, 1, 1, 1}, tol)
	near(t, "contiguous", f32(t, s.Contiguous(s.Transpose(m, 0, 1))), []float64{1, 3, 2, 4}, tol)
}

func TestMatmulLinearEmbedding(t *testing.T) {
	s := scope(t)
	a := s.Float32s([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, torch.CPU)
	b := s.Float32s([]float32{1, 0, 0, 1, 1, 1}, []int64{3, 2}, torch.CPU)
	// [[1 2 3][4 5 6]] x [[1 0][0 1][1 1]] = [[4 5][10 11]]
	near(t, "matmul", f32(t, s.Matmul(a, b)), []float64{4, 5, 10, 11}, tol)
	w := s.Float32s([]float32{1, 0, 0, 1, 1, 1}, []int64{2, 3}, torch.CPU) // (out=2, in=3): [[1 0 0] [1 1 1]]
	bias := s.Float32s([]float32{0.5, -0.5}, []int64{2}, torch.CPU)
	// x·wᵀ: row0 = [1, 1+2+3] = [1, 6]; row1 = [4, 15]; plus bias
	near(t, "linear", f32(t, s.Linear(a, w, bias)), []float64{1.5, 5.5, 4.5, 14.5}, tol)
	near(t, "linear no bias", f32(t, s.Linear(a, w, nil)), []float64{1, 6, 4, 15}, tol)
	// addmm: 2·c + 0.5·(a·b) with c = ones: 2 + 0.5·[[4 5][10 11]]
	near(t, "addmm", f32(t, s.Addmm(s.Ones([]int64{2, 2}, torch.Float32, torch.CPU), a, b, 2, 0.5)), []float64{4, 4.5, 7, 7.5}, tol)
	emb := s.Float32s([]float32{0, 0, 1, 1, 2, 2, 3, 3}, []int64{4, 2}, torch.CPU)
	ids := s.Int64s([]int64{3, 1, 1}, []int64{3}, torch.CPU)
	near(t, "embedding", f32(t, s.Embedding(emb, ids)), []float64{3, 3, 1, 1, 1, 1}, tol)
}

// TestLinearFewRows covers the shapes where Linear on the CPU takes another route than
// x·wᵀ through the GEMM: the dot-product kernel for 1 to 64 rows of input without a
// gradient (on x86 with AVX2 and FMA), (w·xᵀ)ᵀ for 2 to 32 rows that record one, and the
// shapes either side (65 rows; a weight under 64K values; rows whose length is not a
// multiple of the kernels' 32 and eight — 45 = 32 + 8 + 5 takes every step of the
// one-row kernel — and a weight whose rows are not a multiple of its three). The values
// must match a float64 product computed here, with and without bias, for any leading
// shape of x, and the output's shape must be x's with the last size replaced; with a
// gradient, the gradients of x and w must match too.
func TestLinearFewRows(t *testing.T) {
	s := scope(t)
	r := rand.New(rand.NewPCG(1, 2))
	vals := func(n int) []float32 { return normals(r, n) }
	for _, dims := range [][2]int{{512, 2048}, {515, 130}, {64, 100}, {45, 2048}} {
		in, out := dims[0], dims[1]
		wv, bv := vals(out*in), vals(out)
		for _, shape := range [][]int64{{1, int64(in)}, {2, int64(in)}, {3, int64(in)}, {16, 1, int64(in)}, {4, 8, int64(in)}, {33, int64(in)}, {64, int64(in)}, {65, int64(in)}} {
			rows := 1
			for _, d := range shape[:len(shape)-1] {
				rows *= int(d)
			}
			xv := vals(rows * in)
			ref := func(i, j int, withBias bool) float64 {
				v := 0.0
				if withBias {
					v = float64(bv[j])
				}
				for k := 0; k < in; k++ {
					v += float64(xv[i*in+k]) * float64(wv[j*in+k])
				}
				return v
			}
			for _, grad := range []bool{false, true} {
				for _, withBias := range []bool{false, true} {
					name := fmt.Sprintf("linear %dx%d x %v bias %v grad %v", out, in, shape, withBias, grad)
					x := s.Float32s(xv, shape, torch.CPU)
					w := s.Float32s(wv, []int64{int64(out), int64(in)}, torch.CPU)
					var b *torch.Tensor
					if withBias {
						b = s.Float32s(bv, []int64{int64(out)}, torch.CPU)
					}
					if grad {
						requireGrad(t, x, w)
					}
					y := s.Linear(x, w, b)
					want := append(append([]int64{}, shape[:len(shape)-1]...), int64(out))
					shapeIs(t, name, y, want...)
					got := f32(t, y)
					for i := 0; i < rows; i++ {
						for j := 0; j < out; j++ {
							if v := ref(i, j, withBias); math.Abs(float64(got[i*out+j])-v) > 1e-4*(1+math.Abs(v)) {
								t.Fatalf("%s: [%d,%d] = %v, want %v", name, i, j, got[i*out+j], v)
							}
						}
					}
					if !grad {
						continue
					}
					// The loss Σ y: dL/dx[i][k] = Σ_j w[j][k], dL/dw[j][k] = Σ_i x[i][k].
					if err := s.Sum(y).Backward(); err != nil {
						t.Fatal(err)
					}
					gx, gw := f32(t, s.Grad(x)), f32(t, s.Grad(w))
					for k := 0; k < in; k++ {
						var sw, sx float64
						for j := 0; j < out; j++ {
							sw += float64(wv[j*in+k])
						}
						for i := 0; i < rows; i++ {
							sx += float64(xv[i*in+k])
						}
						if d := math.Abs(float64(gx[k]) - sw); d > 1e-3*(1+math.Abs(sw)) {
							t.Fatalf("%s: dL/dx[0][%d] = %v, want %v", name, k, gx[k], sw)
						}
						if d := math.Abs(float64(gw[k]) - sx); d > 1e-3*(1+math.Abs(sx)) {
							t.Fatalf("%s: dL/dw[0][%d] = %v, want %v", name, k, gw[k], sx)
						}
					}
				}
			}
		}
	}
}

// normals returns n standard normal values drawn from r.
func normals(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// requireGrad marks the tensors as leaves that record a gradient.
func requireGrad(t *testing.T, ts ...*torch.Tensor) {
	t.Helper()
	for _, p := range ts {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLinearWide covers the route for a vocabulary-sized weight (16384 rows or more) and
// more than 64 rows of input: products by slices of the weight's rows, and a backward of
// its own. The weight's row count is not a multiple of the slice; the upstream gradient
// is random, so every row of dL/dx differs.
func TestLinearWide(t *testing.T) {
	s := scope(t)
	r := rand.New(rand.NewPCG(3, 4))
	vals := func(n int) []float32 { return normals(r, n) }
	const in, out = 64, 16384 + 1024 + 37 // at least 1M weights
	for _, shape := range [][]int64{{65, in}, {3, 40, in}} {
		rows := int(shape[0])
		if len(shape) == 3 {
			rows *= int(shape[1])
		}
		xv, wv, gv := vals(rows*in), vals(out*in), vals(rows*out)
		for _, grad := range []bool{false, true} {
			name := fmt.Sprintf("linear %dx%d x %v grad %v", out, in, shape, grad)
			x := s.Float32s(xv, shape, torch.CPU)
			w := s.Float32s(wv, []int64{out, in}, torch.CPU)
			if grad {
				requireGrad(t, x, w)
			}
			y := s.Linear(x, w, nil)
			shapeIs(t, name, y, append(append([]int64{}, shape[:len(shape)-1]...), out)...)
			got := f32(t, y)
			for i := 0; i < rows; i++ {
				for j := 0; j < out; j++ {
					v := 0.0
					for k := 0; k < in; k++ {
						v += float64(xv[i*in+k]) * float64(wv[j*in+k])
					}
					if math.Abs(float64(got[i*out+j])-v) > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("%s: [%d,%d] = %v, want %v", name, i, j, got[i*out+j], v)
					}
				}
			}
			if !grad {
				continue
			}
			// L = Σ y·g: dL/dx = g·w, dL/dw = gᵀ·x.
			g := s.Float32s(gv, y.Shape(), torch.CPU)
			if err := s.Sum(s.Mul(y, g)).Backward(); err != nil {
				t.Fatal(err)
			}
			gx, gw := f32(t, s.Grad(x)), f32(t, s.Grad(w))
			for i := 0; i < rows; i++ {
				for k := 0; k < in; k++ {
					v := 0.0
					for j := 0; j < out; j++ {
						v += float64(gv[i*out+j]) * float64(wv[j*in+k])
					}
					if math.Abs(float64(gx[i*in+k])-v) > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("%s: dL/dx[%d][%d] = %v, want %v", name, i, k, gx[i*in+k], v)
					}
				}
			}
			for j := 0; j < out; j += 97 {
				for k := 0; k < in; k++ {
					v := 0.0
					for i := 0; i < rows; i++ {
						v += float64(gv[i*out+j]) * float64(xv[i*in+k])
					}
					if math.Abs(float64(gw[j*in+k])-v) > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("%s: dL/dw[%d][%d] = %v, want %v", name, j, k, gw[j*in+k], v)
					}
				}
			}
		}
	}
}

func TestSoftmaxNorms(t *testing.T) {
	s := scope(t)
	x := s.Float32s([]float32{1, 2, 3, -1, 0, 1}, []int64{2, 3}, torch.CPU)
	z := math.Exp(1) + math.Exp(2) + math.Exp(3)
	row := []float64{math.Exp(1) / z, math.Exp(2) / z, math.Exp(3) / z}
	want := append(append([]float64{}, row...), row...) // softmax is shift-invariant
	near(t, "softmax", f32(t, s.Softmax(x, 1)), want, tol)
	lw := make([]float64, 6)
	for i := range want {
		lw[i] = math.Log(want[i])
	}
	near(t, "log_softmax", f32(t, s.LogSoftmax(x, -1)), lw, tol)

	// RMSNorm of [1 2 3] with w=[1 2 1]: rms = sqrt(14/3)
	w := s.Float32s([]float32{1, 2, 1}, []int64{3}, torch.CPU)
	r := math.Sqrt(14.0/3 + 1e-6)
	near(t, "rms_norm", f32(t, s.RMSNorm(s.Slice(x, 0, 0, 1, 1), w, 1e-6)), []float64{1 / r, 4 / r, 3 / r}, tol)
	// LayerNorm of [1 2 3]: mean 2, var 2/3
	sd := math.Sqrt(2.0/3 + 1e-5)
	b := s.Float32s([]float32{0, 1, 0}, []int64{3}, torch.CPU)
	near(t, "layer_norm", f32(t, s.LayerNorm(s.Slice(x, 0, 0, 1, 1), w, b, 1e-5)), []float64{-1 / sd, 1, 1 / sd}, tol)
	near(t, "layer_norm no affine", f32(t, s.LayerNorm(s.Slice(x, 0, 0, 1, 1), nil, nil, 1e-5)), []float64{-1 / sd, 0, 1 / sd}, tol)
}

func TestRope(t *testing.T) {
	s := scope(t)
	// x = [a b c d], rotate_half(x) = [-c -d a b]; out = x*cos + rot*sin
	x := s.Float32s([]float32{1, 2, 3, 4}, []int64{1, 1, 1, 4}, torch.CPU)
	cos := s.Float32s([]float32{0.5, 0.25, 0.5, 0.25}, []int64{1, 1, 1, 4}, torch.CPU)
	sin := s.Float32s([]float32{0.1, 0.2, 0.1, 0.2}, []int64{1, 1, 1, 4}, torch.CPU)
	want := []float64{1*0.5 - 3*0.1, 2*0.25 - 4*0.2, 3*0.5 + 1*0.1, 4*0.25 + 2*0.2}
	near(t, "rope", f32(t, s.Rope(x, cos, sin)), want, tol)
}

// attentionRef computes softmax(q kᵀ * scale + causal mask) v for one head in Go.
func attentionRef(q, k, v []float64, T, S, D int, causal bool) []float64 {
	out := make([]float64, T*D)
	scale := 1 / math.Sqrt(float64(D))
	for i := 0; i < T; i++ {
		scores := make([]float64, S)
		mx := math.Inf(-1)
		for j := 0; j < S; j++ {
			if causal && j > i {
				scores[j] = math.Inf(-1)
				continue
			}
			var d float64
			for c := 0; c < D; c++ {
				d += q[i*D+c] * k[j*D+c]
			}
			scores[j] = d * scale
			mx = math.Max(mx, scores[j])
		}
		var z float64
		for j := range scores {
			scores[j] = math.Exp(scores[j] - mx)
			z += scores[j]
		}
		for j := range scores {
			for c := 0; c < D; c++ {
				out[i*D+c] += scores[j] / z * v[j*D+c]
			}
		}
	}
	return out
}

func TestAttentionGQA(t *testing.T) {
	s := scope(t)
	const B, Hq, Hkv, T, D = 1, 4, 2, 5, 8
	g, err := torch.NewGenerator(7, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	q := s.Randn([]int64{B, Hq, T, D}, torch.Float64, torch.CPU, g)
	k := s.Randn([]int64{B, Hkv, T, D}, torch.Float64, torch.CPU, g)
	v := s.Randn([]int64{B, Hkv, T, D}, torch.Float64, torch.CPU, g)
	out := s.Attention(q, k, v, torch.AttentionOptions{Causal: true})
	shapeIs(t, "attention", out, B, Hq, T, D)
	qv, _ := q.Float64s()
	kv, _ := k.Float64s()
	vv, _ := v.Float64s()
	ov, _ := out.Float64s()
	for h := 0; h < Hq; h++ {
		kvh := h / (Hq / Hkv) // query heads share key/value heads in groups
		ref := attentionRef(qv[h*T*D:(h+1)*T*D], kv[kvh*T*D:(kvh+1)*T*D], vv[kvh*T*D:(kvh+1)*T*D], T, T, D, true)
		for i := range ref {
			if math.Abs(ref[i]-ov[h*T*D+i]) > 1e-10 {
				t.Fatalf("head %d elem %d: %v vs reference %v", h, i, ov[h*T*D+i], ref[i])
			}
		}
	}
	// An explicit boolean mask equal to the causal one gives the same result.
	mask := s.Tril(s.Ones([]int64{T, T}, torch.Bool, torch.CPU), 0)
	masked := s.Attention(q, k, v, torch.AttentionOptions{Mask: mask})
	mv, _ := masked.Float64s()
	for i := range mv {
		if math.Abs(mv[i]-ov[i]) > 1e-12 {
			t.Fatalf("masked attention differs at %d: %v vs %v", i, mv[i], ov[i])
		}
	}
}

func TestCrossEntropyIgnoreIndex(t *testing.T) {
	s := scope(t)
	logits := s.Float32s([]float32{1, 2, 3, 1, 1, 1, 0, 0, 5}, []int64{3, 3}, torch.CPU)
	targets := s.Int64s([]int64{2, -100, 0}, []int64{3}, torch.CPU)
	lse := func(a ...float64) float64 {
		var z float64
		for _, v := range a {
			z += math.Exp(v)
		}
		return math.Log(z)
	}
	l0 := lse(1, 2, 3) - 3
	l2 := lse(0, 0, 5) - 0
	near(t, "ce mean", f32(t, s.CrossEntropy(logits, targets, -100, torch.ReduceMean)), []float64{(l0 + l2) / 2}, tol)
	near(t, "ce sum", f32(t, s.CrossEntropy(logits, targets, -100, torch.ReduceSum)), []float64{l0 + l2}, tol)
	near(t, "ce none", f32(t, s.CrossEntropy(logits, targets, -100, torch.ReduceNone)), []float64{l0, 0, l2}, tol)
}

func TestDropoutSeeded(t *testing.T) {
	s := scope(t)
	x := s.Ones([]int64{1000}, torch.Float32, torch.CPU)
	run := func() []float32 {
		g, err := torch.NewGenerator(42, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		return f32(t, s.Dropout(x, 0.25, g))
	}
	a, b := run(), run()
	zeros := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("dropout with the same seed differs at %d", i)
		}
		switch {
		case a[i] == 0:
			zeros++
		case math.Abs(float64(a[i])-1/0.75) > 1e-6:
			t.Fatalf("kept element scaled to %v, want %v", a[i], 1/0.75)
		}
	}
	if zeros < 180 || zeros > 320 { // 250 expected; ±4.5 sigma
		t.Fatalf("dropout zeroed %d of 1000 at p=0.25", zeros)
	}
}

func TestRandnSeededAndStats(t *testing.T) {
	s := scope(t)
	draw := func(seed uint64) []float32 {
		g, err := torch.NewGenerator(seed, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		return f32(t, s.Randn([]int64{10000}, torch.Float32, torch.CPU, g))
	}
	a, b, c := draw(1), draw(1), draw(2)
	var mean, sq float64
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different samples")
		}
		if a[i] != c[i] {
			same = false
		}
		mean += float64(a[i])
		sq += float64(a[i]) * float64(a[i])
	}
	if same {
		t.Fatal("different seeds, same samples")
	}
	mean /= float64(len(a))
	sd := math.Sqrt(sq/float64(len(a)) - mean*mean)
	if math.Abs(mean) > 0.05 || math.Abs(sd-1) > 0.05 {
		t.Fatalf("randn mean %v sd %v", mean, sd)
	}
}

func TestDTypeAndTransfers(t *testing.T) {
	s := scope(t)
	a := s.Float32s([]float32{1.5, -2.25, 3}, []int64{3}, torch.CPU)
	for _, dt := range []torch.DType{torch.BFloat16, torch.Float16, torch.Float64} {
		b := s.To(a, dt, torch.CPU)
		if b.DType() != dt {
			t.Fatalf("To(%v) gave %v", dt, b.DType())
		}
		// these values are exact in all three types
		near(t, "round trip "+dt.String(), f32(t, s.To(b, torch.Float32, torch.CPU)), []float64{1.5, -2.25, 3}, 0)
	}
	if _, err := s.To(a, torch.BFloat16, torch.CPU).Float32s(); err == nil {
		t.Fatal("Float32s of a bfloat16 tensor should fail")
	}
	raw, err := s.To(a, torch.BFloat16, torch.CPU).Bytes()
	if err != nil || len(raw) != 6 {
		t.Fatalf("bf16 bytes: %v %v", raw, err)
	}
	// 1.5 in bfloat16 is 0x3FC0 (little-endian bytes C0 3F)
	if raw[0] != 0xC0 || raw[1] != 0x3F {
		t.Fatalf("bf16(1.5) bytes = % x", raw[:2])
	}
	v, err := s.Sum(a).Item()
	if err != nil || v != 2.25 {
		t.Fatalf("item = %v, %v", v, err)
	}
	fb := s.FromBytes(raw, []int64{3}, torch.BFloat16, torch.CPU)
	near(t, "from bytes", f32(t, s.To(fb, torch.Float32, torch.CPU)), []float64{1.5, -2.25, 3}, 0)
}

func TestFromBlobZeroCopy(t *testing.T) {
	before := torch.LiveBlobs()
	data := []float32{1, 2, 3, 4}
	s := torch.NewScope()
	x := s.FromBlobFloat32(data, []int64{2, 2})
	view := s.Transpose(x, 0, 1)
	data[0] = 10 // writes through Go memory are visible in the tensor: no copy was made
	near(t, "aliased", f32(t, view), []float64{10, 3, 2, 4}, 0)
	if err := x.MulInPlace(2); err != nil {
		t.Fatal(err)
	}
	if data[3] != 8 {
		t.Fatalf("in-place op not visible in Go memory: %v", data)
	}
	if torch.LiveBlobs() != before+1 {
		t.Fatalf("blob not tracked")
	}
	x.Free() // the view still holds the storage
	if torch.LiveBlobs() != before+1 {
		t.Fatalf("blob released while a view is alive")
	}
	s.Close()
	if torch.LiveBlobs() != before {
		t.Fatalf("blob not released after the last view died: %d", torch.LiveBlobs())
	}
}

func TestInPlaceAndCopy(t *testing.T) {
	s := scope(t)
	a := s.Zeros([]int64{3}, torch.Float32, torch.CPU)
	if err := a.Fill(2); err != nil {
		t.Fatal(err)
	}
	if err := a.AddInPlace(s.Float32s([]float32{1, 2, 3}, []int64{3}, torch.CPU), 0.5); err != nil {
		t.Fatal(err)
	}
	near(t, "add_", f32(t, a), []float64{2.5, 3, 3.5}, tol)
	b := s.Zeros([]int64{3}, torch.Float64, torch.CPU)
	if err := b.CopyFrom(a); err != nil {
		t.Fatal(err)
	}
	bv, _ := b.Float64s()
	if bv[2] != 3.5 {
		t.Fatalf("copy_ gave %v", bv)
	}
}

func TestDeviceParsing(t *testing.T) {
	d, err := torch.ParseDevice("cpu")
	if err != nil || d != torch.CPU {
		t.Fatal(d, err)
	}
	if _, err := torch.ParseDevice("tpu"); err == nil {
		t.Fatal("tpu accepted")
	}
	if !torch.CUDAAvailable() {
		if _, err := torch.ParseDevice("cuda"); err == nil {
			t.Fatal("cuda accepted without CUDA")
		}
	}
	if d, _ := torch.ParseDevice("auto"); d.Type == torch.DeviceCUDA != torch.CUDAAvailable() {
		t.Fatal("auto picked", d)
	}
	if v := torch.Version(); !strings.HasPrefix(v, "2.") {
		t.Fatalf("libtorch version %q", v)
	}
	t.Logf("libtorch %s, %s, %d threads", torch.Version(), torch.CUDAStatus(), torch.NumThreads())
}

// TestAttentionOneQuery covers Attention as a decoding step calls it (one query per row,
// float32 on the CPU, no gradient): grouped heads, keys and values read from a narrowed
// cache-like buffer, a boolean mask that hides some keys of each row, head sizes that are
// and are not a multiple of eight; against a float64 softmax computed here. A row whose
// keys are all hidden comes back as zeros (libtorch's CPU flash attention; the decoder
// never asks for one).
func TestAttentionOneQuery(t *testing.T) {
	s := scope(t)
	r := rand.New(rand.NewPCG(11, 12))
	for _, D := range []int{64, 44} {
		const B, Hq, Hkv, S, capacity = 3, 6, 2, 37, 50
		qv, kv, vv := normals(r, B*Hq*D), normals(r, B*Hkv*capacity*D), normals(r, B*Hkv*capacity*D)
		mv := make([]bool, B*S)
		for i := range mv {
			mv[i] = r.IntN(4) != 0
		}
		for j := 0; j < S; j++ { // row 2 sees nothing
			mv[2*S+j] = false
		}
		q := s.Float32s(qv, []int64{B, Hq, 1, int64(D)}, torch.CPU)
		k := s.Slice(s.Float32s(kv, []int64{B, Hkv, capacity, int64(D)}, torch.CPU), 2, 0, S, 1)
		v := s.Slice(s.Float32s(vv, []int64{B, Hkv, capacity, int64(D)}, torch.CPU), 2, 0, S, 1)
		mask := s.Bools(mv, []int64{B, 1, 1, S}, torch.CPU)
		got := f32(t, s.Attention(q, k, v, torch.AttentionOptions{Mask: mask}))
		for b := 0; b < B; b++ {
			for h := 0; h < Hq; h++ {
				g := h / (Hq / Hkv)
				at := func(buf []float32, j, d int) float64 { return float64(buf[((b*Hkv+g)*capacity+j)*D+d]) }
				scores := make([]float64, S)
				hi := math.Inf(-1)
				for j := range scores {
					scores[j] = math.Inf(-1)
					if !mv[b*S+j] {
						continue
					}
					var dot float64
					for d := 0; d < D; d++ {
						dot += float64(qv[(b*Hq+h)*D+d]) * at(kv, j, d)
					}
					scores[j] = dot / math.Sqrt(float64(D))
					hi = max(hi, scores[j])
				}
				for d := 0; d < D; d++ {
					y := float64(got[(b*Hq+h)*D+d])
					if math.IsInf(hi, -1) {
						if y != 0 {
							t.Fatalf("D %d: row %d head %d sees no key: got %v, want 0", D, b, h, y)
						}
						continue
					}
					var num, z float64
					for j, sc := range scores {
						e := math.Exp(sc - hi)
						z += e
						num += e * at(vv, j, d)
					}
					if want := num / z; math.Abs(y-want) > 1e-5 {
						t.Fatalf("D %d: row %d head %d value %d = %v, want %v", D, b, h, d, y, want)
					}
				}
			}
		}
	}
}
