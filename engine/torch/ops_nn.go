package torch

/*
#include "shim.h"
*/
import "C"

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
