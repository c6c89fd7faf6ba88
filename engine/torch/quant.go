package torch

/*
#include "shim.h"
*/
import "C"

// QuantizedWeight is a weight matrix w (out, in) held in 8 or 4 bits for fast CPU
// decoding (quant.cpp): each run of 32 values along a row is 32 levels Q with a float
// scale and offset of its own, w = Scale·Q + Offset: 1.25 bytes a weight at 8 bits, 0.75
// at 4, instead of float32's 4. Quantize makes one; QuantizedLinear multiplies by it.
type QuantizedWeight struct {
	// Q holds the levels: int8 (out, in) at 8 bits; at 4 bits uint8 (out, in/2), two
	// levels (-8 to 7, stored plus 8) to a byte, element i of a block in the low half of
	// its byte i and element i+16 in the high half.
	Q             *Tensor
	Scale, Offset *Tensor // (out, in/32) float32
	Bits          int     // 8 or 4
}

// Quantize encodes w (out, in), in a multiple of 32, on the CPU. It uses 4 bits (16
// evenly spaced levels from the block's minimum, of which the block may use only some)
// where that holds every block of w within float rounding, as it does a GGUF Q4_1, Q4_0
// or Q4_K file's weights; otherwise 8 bits, each block with the
// encoding of lower largest error of a symmetric one (scale max|w|/127: GGUF Q8_0 blocks
// come back exactly) and an asymmetric one (scale (max-min)/255: Q4_1 blocks come back
// exactly). No weight is off by more than half its block's scale.
func (s *Scope) Quantize(w *Tensor) *QuantizedWeight {
	if !s.ok("quantize", w) {
		return nil
	}
	var q, scale, offset C.pt_tensor
	var bits C.int
	if err := check("quantize", C.pt_quantize_blocks(w.h, &q, &scale, &offset, &bits)); err != nil {
		s.fail(err)
		return nil
	}
	return &QuantizedWeight{Q: s.adopt(q), Scale: s.adopt(scale), Offset: s.adopt(offset), Bits: int(bits)}
}

// Dequantize returns the float32 weights (out, in) that w holds.
func (w *QuantizedWeight) Dequantize(s *Scope) *Tensor {
	if w == nil {
		return s.failf("dequantize", "no weight")
	}
	if !s.ok("dequantize", w.Q, w.Scale, w.Offset) {
		return nil
	}
	var h C.pt_tensor
	return s.result("dequantize", C.pt_dequantize_blocks(w.Q.h, w.Scale.h, w.Offset.h, C.int(w.Bits), &h), h)
}

// Free releases w's tensors now instead of when their scope closes.
func (w *QuantizedWeight) Free() {
	w.Q.Free()
	w.Scale.Free()
	w.Offset.Free()
}

// Bytes is the size of w's levels, scales and offsets.
func (w *QuantizedWeight) Bytes() int64 {
	sh := w.Scale.Shape()
	if len(sh) != 2 {
		return 0
	}
	return sh[0] * sh[1] * (32*int64(w.Bits)/8 + 8)
}

// QuantizedLinear is x·wᵀ + b for float32 x (…, in) on the CPU with quantized weights w,
// b (out) or nil; it records no gradient (call it under NoGrad). It quantizes x too, by
// blocks of 32 (scale max|x|/127), and sums each block's products as integers, as
// llama.cpp does with its Q8_0 and Q4 weights: each value of x is off by at most half its
// block's step. Where a few rows of decoding are bound by memory it reads 3 to 5 times
// fewer bytes than float32 weights.
func (s *Scope) QuantizedLinear(x *Tensor, w *QuantizedWeight, b *Tensor) *Tensor {
	if w == nil {
		return s.failf("quantized_linear", "no weight")
	}
	in := []*Tensor{x, w.Q, w.Scale, w.Offset}
	if b != nil {
		in = append(in, b)
	}
	if !s.ok("quantized_linear", in...) {
		return nil
	}
	var bh C.pt_tensor
	if b != nil {
		bh = b.h
	}
	var h C.pt_tensor
	return s.result("quantized_linear", C.pt_quantized_linear(x.h, w.Q.h, w.Scale.h, w.Offset.h, C.int(w.Bits), bh, &h), h)
}
