package torch

/*
#include "shim.h"
*/
import "C"

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
