package torch

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// ---- elementwise ----------------------------------------------------------------------

func (s *Scope) unary(op C.int, name string, a *Tensor) *Tensor {
	if !s.ok(name, a) {
		return nil
	}
	var h C.pt_tensor
	return s.result(name, C.pt_unary(op, a.h, &h), h)
}

func (s *Scope) binary(op C.int, name string, a, b *Tensor) *Tensor {
	if !s.ok(name, a, b) {
		return nil
	}
	var h C.pt_tensor
	return s.result(name, C.pt_binary(op, a.h, b.h, &h), h)
}

func (s *Scope) scalar(op C.int, name string, a *Tensor, b float64) *Tensor {
	if !s.ok(name, a) {
		return nil
	}
	var h C.pt_tensor
	return s.result(name, C.pt_binary_scalar(op, a.h, C.double(b), &h), h)
}

// Neg is -a.
func (s *Scope) Neg(a *Tensor) *Tensor { return s.unary(C.PT_NEG, "neg", a) }

// Exp is e^a.
func (s *Scope) Exp(a *Tensor) *Tensor { return s.unary(C.PT_EXP, "exp", a) }

// Log is the natural logarithm.
func (s *Scope) Log(a *Tensor) *Tensor { return s.unary(C.PT_LOG, "log", a) }

// Sqrt is the square root.
func (s *Scope) Sqrt(a *Tensor) *Tensor { return s.unary(C.PT_SQRT, "sqrt", a) }

// Rsqrt is 1/sqrt(a).
func (s *Scope) Rsqrt(a *Tensor) *Tensor { return s.unary(C.PT_RSQRT, "rsqrt", a) }

// Abs is |a|.
func (s *Scope) Abs(a *Tensor) *Tensor { return s.unary(C.PT_ABS, "abs", a) }

// Tanh is the hyperbolic tangent.
func (s *Scope) Tanh(a *Tensor) *Tensor { return s.unary(C.PT_TANH, "tanh", a) }

// Sigmoid is 1/(1+e^-a).
func (s *Scope) Sigmoid(a *Tensor) *Tensor { return s.unary(C.PT_SIGMOID, "sigmoid", a) }

// Relu is max(a, 0).
func (s *Scope) Relu(a *Tensor) *Tensor { return s.unary(C.PT_RELU, "relu", a) }

// Silu is a*sigmoid(a).
func (s *Scope) Silu(a *Tensor) *Tensor { return s.unary(C.PT_SILU, "silu", a) }

// Gelu is the exact (erf) GELU.
func (s *Scope) Gelu(a *Tensor) *Tensor { return s.unary(C.PT_GELU, "gelu", a) }

// GeluTanh is the tanh approximation of GELU (GPT-2's "gelu_new").
func (s *Scope) GeluTanh(a *Tensor) *Tensor { return s.unary(C.PT_GELU_TANH, "gelu_tanh", a) }

// Sin is the sine.
func (s *Scope) Sin(a *Tensor) *Tensor { return s.unary(C.PT_SIN, "sin", a) }

// Cos is the cosine.
func (s *Scope) Cos(a *Tensor) *Tensor { return s.unary(C.PT_COS, "cos", a) }

// Square is a*a.
func (s *Scope) Square(a *Tensor) *Tensor { return s.unary(C.PT_SQUARE, "square", a) }

// Reciprocal is 1/a.
func (s *Scope) Reciprocal(a *Tensor) *Tensor { return s.unary(C.PT_RECIPROCAL, "reciprocal", a) }

// Floor rounds down.
func (s *Scope) Floor(a *Tensor) *Tensor { return s.unary(C.PT_FLOOR, "floor", a) }

// Not is the logical negation.
func (s *Scope) Not(a *Tensor) *Tensor { return s.unary(C.PT_LOGICAL_NOT, "logical_not", a) }

// IsFinite is true where a is neither infinite nor NaN.
func (s *Scope) IsFinite(a *Tensor) *Tensor { return s.unary(C.PT_ISFINITE, "isfinite", a) }

// Contiguous returns a with a row-major layout (a itself, re-wrapped, when it already is).
func (s *Scope) Contiguous(a *Tensor) *Tensor { return s.unary(C.PT_CONTIGUOUS, "contiguous", a) }

// Clone copies a (recorded by autograd).
func (s *Scope) Clone(a *Tensor) *Tensor { return s.unary(C.PT_CLONE, "clone", a) }

// Detach shares a's data without its autograd history.
func (s *Scope) Detach(a *Tensor) *Tensor { return s.unary(C.PT_DETACH, "detach", a) }

// Sum adds all elements (a 0-dimensional result).
func (s *Scope) Sum(a *Tensor) *Tensor { return s.unary(C.PT_SUM_ALL, "sum", a) }

// Mean averages all elements.
func (s *Scope) Mean(a *Tensor) *Tensor { return s.unary(C.PT_MEAN_ALL, "mean", a) }

// Add is a+b with broadcasting.
func (s *Scope) Add(a, b *Tensor) *Tensor { return s.binary(C.PT_ADD, "add", a, b) }

// Sub is a-b.
func (s *Scope) Sub(a, b *Tensor) *Tensor { return s.binary(C.PT_SUB, "sub", a, b) }

// Mul is a*b elementwise.
func (s *Scope) Mul(a, b *Tensor) *Tensor { return s.binary(C.PT_MUL, "mul", a, b) }

// Div is a/b (true division).
func (s *Scope) Div(a, b *Tensor) *Tensor { return s.binary(C.PT_DIV, "div", a, b) }

// Pow is a^b.
func (s *Scope) Pow(a, b *Tensor) *Tensor { return s.binary(C.PT_POW, "pow", a, b) }

// Maximum is the elementwise maximum.
func (s *Scope) Maximum(a, b *Tensor) *Tensor { return s.binary(C.PT_MAXIMUM, "maximum", a, b) }

// Minimum is the elementwise minimum.
func (s *Scope) Minimum(a, b *Tensor) *Tensor { return s.binary(C.PT_MINIMUM, "minimum", a, b) }

// Eq is a == b (bool).
func (s *Scope) Eq(a, b *Tensor) *Tensor { return s.binary(C.PT_EQ, "eq", a, b) }

// Ne is a != b.
func (s *Scope) Ne(a, b *Tensor) *Tensor { return s.binary(C.PT_NE, "ne", a, b) }

// Lt is a < b.
func (s *Scope) Lt(a, b *Tensor) *Tensor { return s.binary(C.PT_LT, "lt", a, b) }

// Le is a <= b.
func (s *Scope) Le(a, b *Tensor) *Tensor { return s.binary(C.PT_LE, "le", a, b) }

// Gt is a > b.
func (s *Scope) Gt(a, b *Tensor) *Tensor { return s.binary(C.PT_GT, "gt", a, b) }

// Ge is a >= b.
func (s *Scope) Ge(a, b *Tensor) *Tensor { return s.binary(C.PT_GE, "ge", a, b) }

// And is the logical and.
func (s *Scope) And(a, b *Tensor) *Tensor { return s.binary(C.PT_LOGICAL_AND, "logical_and", a, b) }

// Or is the logical or.
func (s *Scope) Or(a, b *Tensor) *Tensor { return s.binary(C.PT_LOGICAL_OR, "logical_or", a, b) }

// Matmul is the matrix product with NumPy batching rules.
func (s *Scope) Matmul(a, b *Tensor) *Tensor { return s.binary(C.PT_MATMUL, "matmul", a, b) }

// AddScalar is a+v.
func (s *Scope) AddScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_ADD, "add", a, v) }

// MulScalar is a*v.
func (s *Scope) MulScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_MUL, "mul", a, v) }

// DivScalar is a/v.
func (s *Scope) DivScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_DIV, "div", a, v) }

// PowScalar is a^v.
func (s *Scope) PowScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_POW, "pow", a, v) }

// EqScalar is a == v.
func (s *Scope) EqScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_EQ, "eq", a, v) }

// NeScalar is a != v.
func (s *Scope) NeScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_NE, "ne", a, v) }

// LtScalar is a < v.
func (s *Scope) LtScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_LT, "lt", a, v) }

// GtScalar is a > v.
func (s *Scope) GtScalar(a *Tensor, v float64) *Tensor { return s.scalar(C.PT_GT, "gt", a, v) }

// Clamp limits a to [lo, hi]; NaN bounds are left open.
func (s *Scope) Clamp(a *Tensor, lo, hi float64) *Tensor {
	if !s.ok("clamp", a) {
		return nil
	}
	hasLo, hasHi := C.int(1), C.int(1)
	if lo != lo {
		hasLo = 0
	}
	if hi != hi {
		hasHi = 0
	}
	var h C.pt_tensor
	return s.result("clamp", C.pt_clamp(a.h, C.double(lo), C.double(hi), hasLo, hasHi, &h), h)
}

// Where selects a where cond is true and b elsewhere.
func (s *Scope) Where(cond, a, b *Tensor) *Tensor {
	if !s.ok("where", cond, a, b) {
		return nil
	}
	var h C.pt_tensor
	return s.result("where", C.pt_where(cond.h, a.h, b.h, &h), h)
}

// MaskedFill replaces a's elements where mask is true by value.
func (s *Scope) MaskedFill(a, mask *Tensor, value float64) *Tensor {
	if !s.ok("masked_fill", a, mask) {
		return nil
	}
	var h C.pt_tensor
	return s.result("masked_fill", C.pt_masked_fill(a.h, mask.h, C.double(value), &h), h)
}

// Tril keeps the lower triangle (elements with column-row <= diagonal).
func (s *Scope) Tril(a *Tensor, diagonal int64) *Tensor {
	if !s.ok("tril", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("tril", C.pt_tril(a.h, C.int64_t(diagonal), &h), h)
}

// ---- reductions -----------------------------------------------------------------------

func (s *Scope) reduce(op C.int, name string, a *Tensor, dims []int64, keepdim bool) *Tensor {
	if !s.ok(name, a) {
		return nil
	}
	k := C.int(0)
	if keepdim {
		k = 1
	}
	var h C.pt_tensor
	return s.result(name, C.pt_reduce(op, a.h, shapePtr(dims), C.int(len(dims)), k, &h), h)
}

// SumDims sums over dims (all when empty).
func (s *Scope) SumDims(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_SUM, "sum", a, dims, keepdim)
}

// MeanDims averages over dims (all when empty).
func (s *Scope) MeanDims(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_MEAN, "mean", a, dims, keepdim)
}

// Amax is the maximum over dims.
func (s *Scope) Amax(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_AMAX, "amax", a, dims, keepdim)
}

// Amin is the minimum over dims.
func (s *Scope) Amin(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_AMIN, "amin", a, dims, keepdim)
}

// LogSumExp is log(sum(exp(a))) over dims, computed stably.
func (s *Scope) LogSumExp(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_LOGSUMEXP, "logsumexp", a, dims, keepdim)
}

// Var is the population variance (no Bessel correction) over dims.
func (s *Scope) Var(a *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce(C.PT_VAR, "var", a, dims, keepdim)
}

// Argmax is the index of the maximum along dim.
func (s *Scope) Argmax(a *Tensor, dim int64, keepdim bool) *Tensor {
	if !s.ok("argmax", a) {
		return nil
	}
	k := C.int(0)
	if keepdim {
		k = 1
	}
	var h C.pt_tensor
	return s.result("argmax", C.pt_argmax(a.h, C.int64_t(dim), k, &h), h)
}

// TopK returns the k largest values along dim and their indices.
func (s *Scope) TopK(a *Tensor, k, dim int64) (values, indices *Tensor) {
	if !s.ok("topk", a) {
		return nil, nil
	}
	var v, i C.pt_tensor
	if err := check("topk", C.pt_topk(a.h, C.int64_t(k), C.int64_t(dim), &v, &i)); err != nil {
		s.fail(err)
		return nil, nil
	}
	return s.adopt(v), s.adopt(i)
}

// Sort sorts a along dim and returns the values and their original indices.
func (s *Scope) Sort(a *Tensor, dim int64, descending bool) (values, indices *Tensor) {
	if !s.ok("sort", a) {
		return nil, nil
	}
	d := C.int(0)
	if descending {
		d = 1
	}
	var v, i C.pt_tensor
	if err := check("sort", C.pt_sort(a.h, C.int64_t(dim), d, &v, &i)); err != nil {
		s.fail(err)
		return nil, nil
	}
	return s.adopt(v), s.adopt(i)
}

// Cumsum is the running sum along dim.
func (s *Scope) Cumsum(a *Tensor, dim int64) *Tensor {
	if !s.ok("cumsum", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("cumsum", C.pt_cumsum(a.h, C.int64_t(dim), &h), h)
}

// ---- shape --------------------------------------------------------------------------

// Reshape returns a with a new shape (a view when possible); one dimension may be -1.
func (s *Scope) Reshape(a *Tensor, shape ...int64) *Tensor {
	if !s.ok("reshape", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("reshape", C.pt_reshape(a.h, shapePtr(shape), C.int(len(shape)), &h), h)
}

// Expand broadcasts a to shape without copying (-1 keeps a dimension).
func (s *Scope) Expand(a *Tensor, shape ...int64) *Tensor {
	if !s.ok("expand", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("expand", C.pt_expand(a.h, shapePtr(shape), C.int(len(shape)), &h), h)
}

// Permute reorders dimensions.
func (s *Scope) Permute(a *Tensor, dims ...int64) *Tensor {
	if !s.ok("permute", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("permute", C.pt_permute(a.h, shapePtr(dims), C.int(len(dims)), &h), h)
}

// Transpose swaps two dimensions.
func (s *Scope) Transpose(a *Tensor, d0, d1 int64) *Tensor {
	if !s.ok("transpose", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("transpose", C.pt_transpose(a.h, C.int64_t(d0), C.int64_t(d1), &h), h)
}

// Slice is a[start:end:step] along dim (a view).
func (s *Scope) Slice(a *Tensor, dim, start, end, step int64) *Tensor {
	if !s.ok("slice", a) {
		return nil
	}
	if step <= 0 {
		return s.failf("slice", "step must be positive, got %d", step)
	}
	var h C.pt_tensor
	return s.result("slice", C.pt_slice(a.h, C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), &h), h)
}

// Select picks one index along dim, removing that dimension.
func (s *Scope) Select(a *Tensor, dim, index int64) *Tensor {
	if !s.ok("select", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("select", C.pt_select(a.h, C.int64_t(dim), C.int64_t(index), &h), h)
}

// Unsqueeze inserts a dimension of size 1 at dim.
func (s *Scope) Unsqueeze(a *Tensor, dim int64) *Tensor {
	if !s.ok("unsqueeze", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("unsqueeze", C.pt_unsqueeze(a.h, C.int64_t(dim), &h), h)
}

// Squeeze removes dimension dim if it has size 1.
func (s *Scope) Squeeze(a *Tensor, dim int64) *Tensor {
	if !s.ok("squeeze", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("squeeze", C.pt_squeeze(a.h, C.int64_t(dim), &h), h)
}

func (s *Scope) handles(name string, ts []*Tensor) ([]C.pt_tensor, bool) {
	if !s.ok(name, ts...) {
		return nil, false
	}
	if len(ts) == 0 {
		s.failf(name, "no tensors")
		return nil, false
	}
	hs := make([]C.pt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs, true
}

// Cat concatenates tensors along dim.
func (s *Scope) Cat(ts []*Tensor, dim int64) *Tensor {
	hs, ok := s.handles("cat", ts)
	if !ok {
		return nil
	}
	var h C.pt_tensor
	return s.result("cat", C.pt_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), &h), h)
}

// Stack joins tensors of one shape along a new dimension dim.
func (s *Scope) Stack(ts []*Tensor, dim int64) *Tensor {
	hs, ok := s.handles("stack", ts)
	if !ok {
		return nil
	}
	var h C.pt_tensor
	return s.result("stack", C.pt_stack(&hs[0], C.int(len(hs)), C.int64_t(dim), &h), h)
}

// IndexSelect picks the entries of a along dim listed in index (int64, 1-D).
func (s *Scope) IndexSelect(a *Tensor, dim int64, index *Tensor) *Tensor {
	if !s.ok("index_select", a, index) {
		return nil
	}
	var h C.pt_tensor
	return s.result("index_select", C.pt_index_select(a.h, C.int64_t(dim), index.h, &h), h)
}

// IndexAdd is a copy of a with source's slices along dim added at the positions index
// (int64, 1-D) lists: out[index[i]] += source[i] for dim 0. Gradients flow to a and
// source.
func (s *Scope) IndexAdd(a *Tensor, dim int64, index, source *Tensor) *Tensor {
	if !s.ok("index_add", a, index, source) {
		return nil
	}
	var h C.pt_tensor
	return s.result("index_add", C.pt_index_add(a.h, C.int64_t(dim), index.h, source.h, &h), h)
}

// Gather is out[i][j] = a[i][index[i][j]] for dim 1, and likewise for other dims.
func (s *Scope) Gather(a *Tensor, dim int64, index *Tensor) *Tensor {
	if !s.ok("gather", a, index) {
		return nil
	}
	var h C.pt_tensor
	return s.result("gather", C.pt_gather(a.h, C.int64_t(dim), index.h, &h), h)
}

// ---- neural network ---------------------------------------------------------------------

// Linear is x·wᵀ + b; x (…, in), w (out, in), b (out) or nil.
func (s *Scope) Linear(x, w, b *Tensor) *Tensor {
	in := []*Tensor{x, w}
	if b != nil {
		in = append(in, b)
	}
	if !s.ok("linear", in...) {
		return nil
	}
	var bh C.pt_tensor
	if b != nil {
		bh = b.h
	}
	var h C.pt_tensor
	return s.result("linear", C.pt_linear(x.h, w.h, bh, &h), h)
}

// Addmm is beta·c + alpha·(a·b) for matrices a (n, k) and b (k, m), in one GEMM; c
// broadcasts to (n, m).
func (s *Scope) Addmm(c, a, b *Tensor, beta, alpha float64) *Tensor {
	if !s.ok("addmm", c, a, b) {
		return nil
	}
	var h C.pt_tensor
	return s.result("addmm", C.pt_addmm(c.h, a.h, b.h, C.double(beta), C.double(alpha), &h), h)
}

// Embedding looks up rows of weight (V, C) for integer ids of any shape.
func (s *Scope) Embedding(weight, ids *Tensor) *Tensor {
	if !s.ok("embedding", weight, ids) {
		return nil
	}
	var h C.pt_tensor
	return s.result("embedding", C.pt_embedding(weight.h, ids.h, &h), h)
}

// Softmax along dim.
func (s *Scope) Softmax(a *Tensor, dim int64) *Tensor {
	if !s.ok("softmax", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("softmax", C.pt_softmax(a.h, C.int64_t(dim), 0, &h), h)
}

// LogSoftmax along dim.
func (s *Scope) LogSoftmax(a *Tensor, dim int64) *Tensor {
	if !s.ok("log_softmax", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("log_softmax", C.pt_softmax(a.h, C.int64_t(dim), 1, &h), h)
}

// RMSNorm is x / sqrt(mean(x², last dim) + eps) * w; w may be nil.
func (s *Scope) RMSNorm(x, w *Tensor, eps float64) *Tensor {
	in := []*Tensor{x}
	if w != nil {
		in = append(in, w)
	}
	if !s.ok("rms_norm", in...) {
		return nil
	}
	var wh C.pt_tensor
	if w != nil {
		wh = w.h
	}
	var h C.pt_tensor
	return s.result("rms_norm", C.pt_rms_norm(x.h, wh, C.double(eps), &h), h)
}

// LayerNorm normalises the last dimension to zero mean and unit variance, then applies w
// and b (either may be nil).
func (s *Scope) LayerNorm(x, w, b *Tensor, eps float64) *Tensor {
	if !s.ok("layer_norm", x) {
		return nil
	}
	var wh, bh C.pt_tensor
	if w != nil {
		if !s.ok("layer_norm", w) {
			return nil
		}
		wh = w.h
	}
	if b != nil {
		if !s.ok("layer_norm", b) {
			return nil
		}
		bh = b.h
	}
	var h C.pt_tensor
	return s.result("layer_norm", C.pt_layer_norm(x.h, wh, bh, C.double(eps), &h), h)
}

// Rope applies rotary position embeddings in the rotate-half convention (Llama, Qwen):
// x*cos + rotate_half(x)*sin, where rotate_half(x) = cat(-x[…, D/2:], x[…, :D/2]).
// cos and sin broadcast to x.
func (s *Scope) Rope(x, cos, sin *Tensor) *Tensor {
	if !s.ok("rope", x, cos, sin) {
		return nil
	}
	var h C.pt_tensor
	return s.result("rope", C.pt_rope(x.h, cos.h, sin.h, &h), h)
}

// AttentionOptions are the optional arguments of Attention.
type AttentionOptions struct {
	Mask    *Tensor // bool (true: attend) or additive float, broadcastable to (B, H, T, S); nil for none
	Causal  bool    // mask future positions (must not be combined with Mask)
	Dropout float64 // attention dropout probability
	Scale   float64 // 0: 1/sqrt(D)
}

// Attention is scaled dot-product attention: q (B, Hq, T, D), k and v (B, Hkv, S, D);
// Hq must be a multiple of Hkv (grouped-query attention). The result is (B, Hq, T, D).
func (s *Scope) Attention(q, k, v *Tensor, o AttentionOptions) *Tensor {
	in := []*Tensor{q, k, v}
	if o.Mask != nil {
		in = append(in, o.Mask)
	}
	if !s.ok("attention", in...) {
		return nil
	}
	var mh C.pt_tensor
	if o.Mask != nil {
		mh = o.Mask.h
	}
	causal := C.int(0)
	if o.Causal {
		causal = 1
	}
	scale := o.Scale
	if scale <= 0 {
		scale = -1
	}
	var h C.pt_tensor
	return s.result("attention", C.pt_sdpa(q.h, k.h, v.h, mh, causal, C.double(o.Dropout), C.double(scale), &h), h)
}

// Reduction says how CrossEntropy combines per-example losses.
type Reduction int

// Reductions.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy is the negative log-likelihood of targets (N) under logits (N, C);
// positions whose target equals ignoreIndex do not count (the mean is over the rest).
func (s *Scope) CrossEntropy(logits, targets *Tensor, ignoreIndex int64, r Reduction) *Tensor {
	if !s.ok("cross_entropy", logits, targets) {
		return nil
	}
	var h C.pt_tensor
	return s.result("cross_entropy", C.pt_cross_entropy(logits.h, targets.h, C.int64_t(ignoreIndex), C.int(r), &h), h)
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p), drawing
// from g (nil: the default generator).
func (s *Scope) Dropout(x *Tensor, p float64, g *Generator) *Tensor {
	if !s.ok("dropout", x) {
		return nil
	}
	var h C.pt_tensor
	return s.result("dropout", C.pt_dropout(x.h, C.double(p), genHandle(g), &h), h)
}

// Multinomial draws n indices per row of probs without replacement.
func (s *Scope) Multinomial(probs *Tensor, n int64, g *Generator) *Tensor {
	if !s.ok("multinomial", probs) {
		return nil
	}
	var h C.pt_tensor
	return s.result("multinomial", C.pt_multinomial(probs.h, C.int64_t(n), genHandle(g), &h), h)
}

// ---- in place -------------------------------------------------------------------------

func inPlace(op string, e C.pt_err) error { return check(op, e) }

// CopyFrom copies src's values into t (broadcasting, converting dtype and device).
func (t *Tensor) CopyFrom(src *Tensor) error {
	if t.Closed() || src.Closed() {
		return ErrClosed
	}
	return inPlace("copy_", C.pt_copy_(t.h, src.h))
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float64) error {
	if t.Closed() {
		return ErrClosed
	}
	return inPlace("fill_", C.pt_fill_(t.h, C.double(v)))
}

// AddInPlace is t += alpha*src.
func (t *Tensor) AddInPlace(src *Tensor, alpha float64) error {
	if t.Closed() || src.Closed() {
		return ErrClosed
	}
	return inPlace("add_", C.pt_add_(t.h, src.h, C.double(alpha)))
}

// MulInPlace is t *= v.
func (t *Tensor) MulInPlace(v float64) error {
	if t.Closed() {
		return ErrClosed
	}
	return inPlace("mul_", C.pt_mul_scalar_(t.h, C.double(v)))
}

// ---- autograd -------------------------------------------------------------------------

// SetRequiresGrad marks t (a leaf) as a parameter whose gradient backward computes.
func (t *Tensor) SetRequiresGrad(on bool) error {
	if t.Closed() {
		return ErrClosed
	}
	v := C.int(0)
	if on {
		v = 1
	}
	return check("requires_grad_", C.pt_set_requires_grad(t.h, v))
}

// Backward computes gradients of t (a scalar) with respect to every leaf that requires
// them, accumulating into their Grad.
func (t *Tensor) Backward() error {
	if t.Closed() {
		return ErrClosed
	}
	return check("backward", C.pt_backward(t.h, nil, 0))
}

// Grad returns t's accumulated gradient in s, or nil (without error) when it has none.
func (s *Scope) Grad(t *Tensor) *Tensor {
	if !s.ok("grad", t) {
		return nil
	}
	var h C.pt_tensor
	if err := check("grad", C.pt_grad(t.h, &h)); err != nil {
		return s.fail(err)
	}
	if h == nil {
		return nil
	}
	return s.adopt(h)
}

// Gradients returns the gradients of the scalar loss with respect to inputs, in s (nil
// where loss does not depend on an input), as torch.autograd.grad: nothing is
// accumulated into the inputs' Grad, and loss's graph is freed.
func (s *Scope) Gradients(loss *Tensor, inputs []*Tensor) []*Tensor {
	if !s.ok("autograd.grad", loss) || len(inputs) == 0 {
		return nil
	}
	hs, err := handlesOf(inputs)
	if err != nil {
		s.fail(fmt.Errorf("torch: autograd.grad: %w", err))
		return nil
	}
	out := make([]C.pt_tensor, len(inputs))
	if err := check("autograd.grad", C.pt_autograd_grad(loss.h, &hs[0], C.int(len(hs)), &out[0])); err != nil {
		s.fail(err)
		return nil
	}
	gs := make([]*Tensor, len(inputs))
	for i, h := range out {
		if h != nil {
			gs[i] = s.adopt(h)
		}
	}
	return gs
}

// AccumulateGrad adds g to t's gradient (an undefined gradient becomes g, sharing its
// memory: do not modify g afterwards).
func (t *Tensor) AccumulateGrad(g *Tensor) error {
	if t.Closed() || g.Closed() {
		return ErrClosed
	}
	return check("accumulate_grad", C.pt_accumulate_grad(t.h, g.h))
}

func handlesOf(ts []*Tensor) ([]C.pt_tensor, error) {
	hs := make([]C.pt_tensor, len(ts))
	for i, t := range ts {
		if t.Closed() {
			return nil, fmt.Errorf("tensor %d: %w", i, ErrClosed)
		}
		hs[i] = t.h
	}
	return hs, nil
}

// ZeroGrad drops the gradients of params (they become undefined, as set_to_none=True).
func ZeroGrad(params []*Tensor) error {
	if len(params) == 0 {
		return nil
	}
	hs, err := handlesOf(params)
	if err != nil {
		return err
	}
	return check("zero_grad", C.pt_zero_grad(&hs[0], C.int(len(hs))))
}

// NoGrad runs f with gradient recording off. libtorch keeps this mode per OS thread, so
// the goroutine stays on its thread until f returns.
func NoGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.pt_set_grad_enabled(0)
	defer C.pt_set_grad_enabled(prev)
	return f()
}

// Autocast runs f with automatic mixed precision on dev's type: matrix products and
// attention compute in dtype (bfloat16 or float16) while parameters stay as they are, as
// torch.autocast does. The mode is per OS thread, so the goroutine stays on its thread.
// Run backward outside f.
func Autocast(dev Device, dtype DType, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prevOn C.int
	var prevDType C.int32_t
	if err := check("autocast", C.pt_set_autocast(C.int32_t(dev.Type), 1, C.int32_t(dtype), &prevOn, &prevDType)); err != nil {
		return err
	}
	defer func() {
		var on C.int
		var dt C.int32_t
		_ = check("autocast", C.pt_set_autocast(C.int32_t(dev.Type), prevOn, prevDType, &on, &dt))
	}()
	return f()
}

// GradEnabled reports whether gradient recording is on for the calling thread.
func GradEnabled() bool { return C.pt_is_grad_enabled() != 0 }

// ---- optimisation -----------------------------------------------------------------------

// AdamWConfig holds AdamW's hyperparameters.
type AdamWConfig struct {
	LR          float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
}

// AdamWStep applies one AdamW update (decoupled weight decay, bias-corrected moments)
// to params using their gradients; m and v are the first and second moments, step the
// 1-based number of this update. Parameters without gradients are left alone.
func AdamWStep(params, m, v []*Tensor, step int64, c AdamWConfig) error {
	if len(params) != len(m) || len(params) != len(v) {
		return &Error{Op: "adamw", Msg: fmt.Sprintf("%d params but %d and %d moment tensors", len(params), len(m), len(v))}
	}
	if len(params) == 0 {
		return nil
	}
	if step < 1 {
		return &Error{Op: "adamw", Msg: fmt.Sprintf("step must be >= 1, got %d", step)}
	}
	ph, err := handlesOf(params)
	if err != nil {
		return err
	}
	mh, err := handlesOf(m)
	if err != nil {
		return err
	}
	vh, err := handlesOf(v)
	if err != nil {
		return err
	}
	return check("adamw", C.pt_adamw_step(&ph[0], &mh[0], &vh[0], C.int(len(ph)), C.int64_t(step),
		C.double(c.LR), C.double(c.Beta1), C.double(c.Beta2), C.double(c.Eps), C.double(c.WeightDecay)))
}

// ClipGradNorm scales the gradients of params so their global L2 norm is at most maxNorm
// (maxNorm <= 0 only measures) and returns the norm before clipping.
func ClipGradNorm(params []*Tensor, maxNorm float64) (float64, error) {
	if len(params) == 0 {
		return 0, nil
	}
	hs, err := handlesOf(params)
	if err != nil {
		return 0, err
	}
	var total C.double
	if err := check("clip_grad_norm", C.pt_clip_grad_norm(&hs[0], C.int(len(hs)), C.double(maxNorm), &total)); err != nil {
		return 0, err
	}
	return float64(total), nil
}
