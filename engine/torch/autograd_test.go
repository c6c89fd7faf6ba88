package torch_test

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// param is a float64 leaf for gradient checks.
type param struct {
	shape  []int64
	values []float64
}

func seq(n int, scale, shift float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		// a fixed, irregular pattern so no gradient is accidentally symmetric
		v[i] = scale * (math.Sin(float64(i)*1.7+shift) + 0.3*math.Cos(float64(i)*0.9))
	}
	return v
}

// gradCheck compares backward's gradients of loss(params) with central differences.
func gradCheck(t *testing.T, name string, params []param, loss func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor) {
	t.Helper()
	eval := func(vals [][]float64, withGrad bool) (float64, [][]float64) {
		s := torch.NewScope()
		defer s.Close()
		ts := make([]*torch.Tensor, len(params))
		for i, p := range params {
			ts[i] = s.Float64s(vals[i], p.shape, torch.CPU)
			if withGrad {
				if err := ts[i].SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
		}
		l := loss(s, ts)
		if err := s.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, err := l.Item()
		if err != nil {
			t.Fatal(err)
		}
		if !withGrad {
			return v, nil
		}
		if err := l.Backward(); err != nil {
			t.Fatalf("%s: backward: %v", name, err)
		}
		grads := make([][]float64, len(ts))
		for i, p := range ts {
			g := s.Grad(p)
			if g == nil {
				t.Fatalf("%s: parameter %d has no gradient", name, i)
			}
			grads[i], err = g.Float64s()
			if err != nil {
				t.Fatal(err)
			}
		}
		return v, grads
	}
	vals := make([][]float64, len(params))
	for i, p := range params {
		vals[i] = append([]float64(nil), p.values...)
	}
	_, grads := eval(vals, true)
	const h = 1e-6
	for i := range params {
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + h
			up, _ := eval(vals, false)
			vals[i][j] = orig - h
			down, _ := eval(vals, false)
			vals[i][j] = orig
			num := (up - down) / (2 * h)
			if math.Abs(num-grads[i][j]) > 1e-6*(1+math.Abs(num)) {
				t.Fatalf("%s: d/dp%d[%d]: backward %.10g, finite difference %.10g", name, i, j, grads[i][j], num)
			}
		}
	}
}

func TestGradRMSNormLinear(t *testing.T) {
	// loss = sum(linear(rmsnorm(x) * w_norm, W, b)²)
	gradCheck(t, "rmsnorm+linear", []param{
		{[]int64{3, 4}, seq(12, 1, 0)},
		{[]int64{4}, seq(4, 0.5, 1)},
		{[]int64{2, 4}, seq(8, 0.7, 2)},
		{[]int64{2}, seq(2, 0.1, 3)},
	}, func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor {
		y := s.Linear(s.RMSNorm(p[0], p[1], 1e-6), p[2], p[3])
		return s.Sum(s.Square(y))
	})
}

func TestGradLayerNormGelu(t *testing.T) {
	gradCheck(t, "layernorm+gelu", []param{
		{[]int64{2, 5}, seq(10, 1, 0.4)},
		{[]int64{5}, seq(5, 0.5, 1)},
		{[]int64{5}, seq(5, 0.2, 2)},
	}, func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor {
		return s.Sum(s.Mul(s.GeluTanh(s.LayerNorm(p[0], p[1], p[2], 1e-5)), s.Gelu(p[0])))
	})
}

func TestGradSwiGLU(t *testing.T) {
	// down(silu(gate(x)) * up(x)), the Llama MLP
	gradCheck(t, "swiglu", []param{
		{[]int64{2, 3}, seq(6, 1, 0)},
		{[]int64{4, 3}, seq(12, 0.6, 1)},
		{[]int64{4, 3}, seq(12, 0.6, 2)},
		{[]int64{3, 4}, seq(12, 0.6, 3)},
	}, func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor {
		h := s.Mul(s.Silu(s.Linear(p[0], p[1], nil)), s.Linear(p[0], p[2], nil))
		return s.Sum(s.Tanh(s.Linear(h, p[3], nil)))
	})
}

func TestGradAttentionRope(t *testing.T) {
	// causal GQA attention over rotated q and k: 4 query heads, 2 key/value heads
	const T, D = 3, 4
	cos := seq(T*D, 1, 5)
	sin := seq(T*D, 1, 6)
	gradCheck(t, "attention+rope", []param{
		{[]int64{1, 4, T, D}, seq(4*T*D, 1, 0)},
		{[]int64{1, 2, T, D}, seq(2*T*D, 1, 1)},
		{[]int64{1, 2, T, D}, seq(2*T*D, 1, 2)},
	}, func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor {
		c := s.Float64s(cos, []int64{1, 1, T, D}, torch.CPU)
		sn := s.Float64s(sin, []int64{1, 1, T, D}, torch.CPU)
		q := s.Rope(p[0], c, sn)
		k := s.Rope(p[1], c, sn)
		o := s.Attention(q, k, p[2], torch.AttentionOptions{Causal: true})
		return s.Sum(s.Mul(o, o))
	})
}

func TestGradEmbeddingCrossEntropy(t *testing.T) {
	gradCheck(t, "embedding+cross_entropy", []param{
		{[]int64{5, 3}, seq(15, 1, 0)},
		{[]int64{5, 3}, seq(15, 1, 1)},
	}, func(s *torch.Scope, p []*torch.Tensor) *torch.Tensor {
		ids := s.Int64s([]int64{0, 3, 3, 1}, []int64{4}, torch.CPU)
		targets := s.Int64s([]int64{3, -100, 1, 4}, []int64{4}, torch.CPU)
		logits := s.Linear(s.Embedding(p[0], ids), p[1], nil) // tied-style head (4, 5)
		return s.CrossEntropy(logits, targets, -100, torch.ReduceMean)
	})
}

func TestNoGradAndZeroGrad(t *testing.T) {
	s := scope(t)
	w := s.Float32s([]float32{1, 2}, []int64{2}, torch.CPU)
	if err := w.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	var y *torch.Tensor
	if err := torch.NoGrad(func() error {
		if torch.GradEnabled() {
			t.Error("grad mode on inside NoGrad")
		}
		y = s.Mul(w, w)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !torch.GradEnabled() {
		t.Fatal("grad mode not restored")
	}
	if in, _ := y.Info(); in.RequiresGrad {
		t.Fatal("result computed under NoGrad requires grad")
	}
	// d/dw sum(w*w) = 2w, accumulated twice = 4w
	for i := 0; i < 2; i++ {
		if err := s.Sum(s.Mul(w, w)).Backward(); err != nil {
			t.Fatal(err)
		}
	}
	near(t, "accumulated grad", f32(t, s.Grad(w)), []float64{4, 8}, tol)
	if err := torch.ZeroGrad([]*torch.Tensor{w}); err != nil {
		t.Fatal(err)
	}
	if g := s.Grad(w); g != nil {
		t.Fatal("gradient survived ZeroGrad")
	}
}

func TestAdamWMatchesFormula(t *testing.T) {
	s := scope(t)
	p0 := []float64{0.5, -1, 2}
	target := []float64{1, 1, -1}
	p := s.Float64s(p0, []int64{3}, torch.CPU)
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	m := s.Zeros([]int64{3}, torch.Float64, torch.CPU)
	v := s.Zeros([]int64{3}, torch.Float64, torch.CPU)
	tg := s.Float64s(target, []int64{3}, torch.CPU)
	c := torch.AdamWConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}

	// Reference in Go: AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it.
	ref := append([]float64(nil), p0...)
	rm := make([]float64, 3)
	rv := make([]float64, 3)
	for step := int64(1); step <= 3; step++ {
		// loss = sum((p - target)²), grad = 2(p - target)
		if err := torch.ZeroGrad([]*torch.Tensor{p}); err != nil {
			t.Fatal(err)
		}
		if err := s.Sum(s.Square(s.Sub(p, tg))).Backward(); err != nil {
			t.Fatal(err)
		}
		if err := torch.AdamWStep([]*torch.Tensor{p}, []*torch.Tensor{m}, []*torch.Tensor{v}, step, c); err != nil {
			t.Fatal(err)
		}
		for i := range ref {
			g := 2 * (ref[i] - target[i])
			ref[i] *= 1 - c.LR*c.WeightDecay
			rm[i] = c.Beta1*rm[i] + (1-c.Beta1)*g
			rv[i] = c.Beta2*rv[i] + (1-c.Beta2)*g*g
			mh := rm[i] / (1 - math.Pow(c.Beta1, float64(step)))
			vh := rv[i] / (1 - math.Pow(c.Beta2, float64(step)))
			ref[i] -= c.LR * mh / (math.Sqrt(vh) + c.Eps)
		}
		got, _ := p.Float64s()
		for i := range ref {
			if math.Abs(got[i]-ref[i]) > 1e-12 {
				t.Fatalf("step %d: p = %v, reference %v", step, got, ref)
			}
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	s := scope(t)
	a := s.Float32s([]float32{0, 0}, []int64{2}, torch.CPU)
	b := s.Float32s([]float32{0}, []int64{1}, torch.CPU)
	for _, p := range []*torch.Tensor{a, b} {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	// grads: d/da (3a0 + 0a1) = [3 0]; d/db 4b = [4]; global norm 5
	loss := s.Add(s.Sum(s.Mul(a, s.Float32s([]float32{3, 0}, []int64{2}, torch.CPU))), s.Sum(s.MulScalar(b, 4)))
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	n, err := torch.ClipGradNorm([]*torch.Tensor{a, b}, 1)
	if err != nil || math.Abs(n-5) > 1e-6 {
		t.Fatalf("norm %v, %v", n, err)
	}
	near(t, "clipped a", f32(t, s.Grad(a)), []float64{0.6, 0}, 1e-5)
	near(t, "clipped b", f32(t, s.Grad(b)), []float64{0.8}, 1e-5)
	n, _ = torch.ClipGradNorm([]*torch.Tensor{a, b}, 0)
	if math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm after clipping %v", n)
	}
}

func TestErrorsAreReturned(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.Ones([]int64{2, 3}, torch.Float32, torch.CPU)
	b := s.Ones([]int64{2, 3}, torch.Float32, torch.CPU)

	// shape mismatch: the C++ message comes back, nothing aborts
	if r := s.Matmul(a, b); r != nil {
		t.Fatal("matmul of (2,3)x(2,3) returned a tensor")
	}
	err := s.Err()
	var te *torch.Error
	if !errors.As(err, &te) || te.Op != "matmul" || !strings.Contains(te.Msg, "cannot be multiplied") {
		t.Fatalf("matmul error = %v", err)
	}
	if strings.Contains(err.Error(), "Exception raised from") {
		t.Fatalf("error carries a C++ backtrace: %v", err)
	}
	// sticky: later operations do nothing and keep the first error
	if r := s.Add(a, b); r != nil || s.Err() != err {
		t.Fatal("operation ran after an error")
	}
	if got := s.ResetErr(); got != err || s.Err() != nil {
		t.Fatal("ResetErr")
	}

	// wrong dtype: embedding ids must be integers
	s.Embedding(a, s.Ones([]int64{2}, torch.Float32, torch.CPU))
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "embedding") {
		t.Fatalf("float ids: %v", err)
	}
	// wrong element count for the shape
	s.Float32s([]float32{1, 2, 3}, []int64{2, 2}, torch.CPU)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "do not fill shape") {
		t.Fatalf("bad shape: %v", err)
	}
	// bad reshape, out-of-range dim
	s.Reshape(a, 4, 2)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "invalid for input of size 6") {
		t.Fatalf("reshape: %v", err)
	}
	s.Transpose(a, 0, 5)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("transpose: %v", err)
	}
	// device mismatch
	if torch.CUDAAvailable() {
		g := s.Ones([]int64{2, 3}, torch.Float32, torch.CUDA(0))
		s.Add(a, g)
		if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "device") {
			t.Fatalf("cpu+cuda: %v", err)
		}
	} else {
		s.Ones([]int64{2}, torch.Float32, torch.CUDA(0))
		if err := s.ResetErr(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "cuda") {
			t.Fatalf("cuda tensor on a CPU-only machine: %v", err)
		}
	}
	// dtype mismatch in copy-out and item of a multi-element tensor
	if _, err := a.Int64s(); err == nil {
		t.Fatal("Int64s of a float tensor")
	}
	if _, err := a.Item(); err == nil {
		t.Fatal("Item of a 6-element tensor")
	}
	// nil input (the result of a failed op)
	s.Add(a, nil)
	if err := s.ResetErr(); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("nil input: %v", err)
	}
	// use after free
	b.Free()
	s.Add(a, b)
	if err := s.ResetErr(); !errors.Is(err, torch.ErrClosed) {
		t.Fatalf("use after free: %v", err)
	}
	if _, err := b.Float32s(); !errors.Is(err, torch.ErrClosed) {
		t.Fatalf("read after free: %v", err)
	}
	if err := b.Backward(); !errors.Is(err, torch.ErrClosed) {
		t.Fatalf("backward after free: %v", err)
	}
	// use after the scope closed
	s.Close()
	if _, err := a.Float32s(); !errors.Is(err, torch.ErrClosed) {
		t.Fatalf("read after scope close: %v", err)
	}
	s.Ones([]int64{1}, torch.Float32, torch.CPU)
	if err := s.Err(); !errors.Is(err, torch.ErrClosed) {
		t.Fatalf("op on closed scope: %v", err)
	}
	// backward of a non-scalar, AdamW with mismatched lists
	s2 := scope(t)
	x := s2.Ones([]int64{3}, torch.Float32, torch.CPU)
	_ = x.SetRequiresGrad(true)
	if err := s2.MulScalar(x, 2).Backward(); err == nil {
		t.Fatal("backward of a vector without a gradient argument")
	}
	if err := torch.AdamWStep([]*torch.Tensor{x}, nil, nil, 1, torch.AdamWConfig{LR: 1}); err == nil {
		t.Fatal("AdamW with missing moments")
	}
}

func TestNoLeaks(t *testing.T) {
	base := torch.LiveTensors()
	for i := 0; i < 20; i++ {
		s := torch.NewScope()
		w := s.Randn([]int64{8, 8}, torch.Float32, torch.CPU, nil)
		_ = w.SetRequiresGrad(true)
		x := s.Randn([]int64{4, 8}, torch.Float32, torch.CPU, nil)
		y := s.Softmax(s.Linear(s.RMSNorm(x, nil, 1e-6), w, nil), -1)
		loss := s.Mean(s.Square(y))
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		_ = s.Grad(w)
		if s.Err() != nil || s.Len() == 0 {
			t.Fatal(s.Err())
		}
		s.Close()
	}
	if got := torch.LiveTensors(); got != base {
		t.Fatalf("live tensors %d after closing every scope, want %d", got, base)
	}
	// MoveTo: a tensor moved out survives its first scope and dies with the second
	outer := torch.NewScope()
	inner := torch.NewScope()
	kept := inner.Ones([]int64{2}, torch.Float32, torch.CPU).MoveTo(outer)
	inner.Ones([]int64{2}, torch.Float32, torch.CPU)
	inner.Close()
	if kept.Closed() || torch.LiveTensors() != base+1 {
		t.Fatalf("moved tensor freed with its old scope (live %d)", torch.LiveTensors()-base)
	}
	outer.Close()
	if !kept.Closed() || torch.LiveTensors() != base {
		t.Fatalf("moved tensor not freed with its new scope")
	}
}

func TestAutocast(t *testing.T) {
	s := scope(t)
	dev := torch.CPU
	if torch.CUDAAvailable() {
		dev = torch.CUDA(0)
	}
	x := s.Randn([]int64{4, 8}, torch.Float32, dev, nil)
	w := s.Randn([]int64{3, 8}, torch.Float32, dev, nil)
	_ = w.SetRequiresGrad(true)
	var y *torch.Tensor
	if err := torch.Autocast(dev, torch.BFloat16, func() error {
		y = s.Linear(x, w, nil)
		return s.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if y.DType() != torch.BFloat16 {
		t.Fatalf("linear under autocast gave %v", y.DType())
	}
	if z := s.Linear(x, w, nil); z.DType() != torch.Float32 {
		t.Fatalf("autocast leaked out of its region: %v", z.DType())
	}
	// backward reaches the float32 parameter through the bf16 product
	if err := s.Sum(s.To(y, torch.Float32, dev)).Backward(); err != nil {
		t.Fatal(err)
	}
	if g := s.Grad(w); g == nil || g.DType() != torch.Float32 {
		t.Fatal("no float32 gradient through autocast")
	}
}

// TestGradientsAndAccumulateGrad: Gradients gives what Backward accumulates, without
// touching the inputs' gradients, and nil for an input the loss does not use;
// AccumulateGrad sets an undefined gradient and adds to a defined one.
func TestGradientsAndAccumulateGrad(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.Float64s(seq(6, 1, 0), []int64{2, 3}, torch.CPU)
	b := s.Float64s(seq(3, 1, 2), []int64{3}, torch.CPU)
	unused := s.Float64s([]float64{1, 2}, []int64{2}, torch.CPU)
	for _, p := range []*torch.Tensor{a, b, unused} {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	loss := func() *torch.Tensor { return s.Sum(s.Mul(s.Tanh(a), b)) }
	gs := s.Gradients(loss(), []*torch.Tensor{a, b, unused})
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if gs[2] != nil {
		t.Fatal("gradient for an input the loss does not use")
	}
	if s.Grad(a) != nil || s.Grad(b) != nil {
		t.Fatal("Gradients accumulated into the inputs' gradients")
	}
	if err := loss().Backward(); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*torch.Tensor{a, b} {
		want, _ := s.Grad(p).Float64s()
		got, _ := gs[i].Float64s()
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("input %d [%d]: Gradients %v, Backward %v", i, j, got[j], want[j])
			}
		}
	}
	// b's gradient is defined: adding gs[1] doubles it; unused's is not: it becomes gs[0][:2].
	if err := b.AccumulateGrad(gs[1]); err != nil {
		t.Fatal(err)
	}
	g := s.Float64s([]float64{0.5, -1}, []int64{2}, torch.CPU)
	if err := unused.AccumulateGrad(g); err != nil {
		t.Fatal(err)
	}
	once, _ := gs[1].Float64s()
	twice, _ := s.Grad(b).Float64s()
	for j := range once {
		if twice[j] != 2*once[j] {
			t.Fatalf("accumulated [%d]: %v, want %v", j, twice[j], 2*once[j])
		}
	}
	if got, _ := s.Grad(unused).Float64s(); got[0] != 0.5 || got[1] != -1 {
		t.Fatalf("undefined gradient after AccumulateGrad: %v", got)
	}
}

// TestSetThreadNumThreads: the count changes for the calling thread only and comes back.
func TestSetThreadNumThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all := torch.NumThreads()
	prev := torch.SetThreadNumThreads(1)
	if prev != all || torch.NumThreads() != 1 {
		t.Fatalf("SetThreadNumThreads(1) returned %d (want %d), then NumThreads %d (want 1)", prev, all, torch.NumThreads())
	}
	other := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		other <- torch.NumThreads()
	}()
	if n := <-other; n != all {
		t.Errorf("another thread sees %d threads, want %d", n, all)
	}
	if torch.SetThreadNumThreads(prev); torch.NumThreads() != all {
		t.Fatalf("restored to %d, want %d", torch.NumThreads(), all)
	}
}
