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

// DecodeWeight is one projection of a decoder layer for DecodeLayers: Quantized with its
// Bias (nil: none), or, where Quantized is nil, float32 weights on the CPU: Float, one to
// three (out_i, in) matrices whose rows, in order, are the projection's (a layer's query,
// key and value weights, used where they are rather than copied into one), with FloatBias
// nil or one bias per matrix.
type DecodeWeight struct {
	Quantized *QuantizedWeight
	Bias      *Tensor
	Float     []*Tensor
	FloatBias []*Tensor
}

// DecodeLayer is one Llama-family decoder layer's weights for DecodeLayers: the two
// RMSNorm weights (and Qwen3's per-head query and key norms, or nil), the projections
// (QKV: the q, k and v rows in that order; GateUp: gate rows, then up), and the layer's
// key/value cache, contiguous float32 (B, Hkv, Cap, D).
type DecodeLayer struct {
	InputNorm, PostNorm  *Tensor
	QNorm, KNorm         *Tensor
	QKV, O, GateUp, Down DecodeWeight
	Keys, Values         *Tensor
}

// DecodeShape is the attention's shape and the norms' epsilon.
type DecodeShape struct {
	Heads, KVHeads, HeadDim int
	Eps                     float64
}

// DecodeLayers runs one decoding step of the layers in one call, for x (B, C) float32 on
// the CPU: one new token per row, whose keys and values go to cache slot `slot`; cos and
// sin (B, D) are each row's rotary tables at its position, mask (bool, broadcastable to
// (B, 1, 1, slot+1); nil: every slot) the slots each row attends to. Each layer is
// h = RMSNorm(x); q, k, v = QKV·h (each q and k head RMSNormed with QNorm, KNorm when
// set) with rotary embedding; attention over the cache;
// x += O·attention; x += Down·(silu(gate)·up) of GateUp·RMSNorm(x) — what the layers
// compute op by op, with QuantizedLinear's products for quantized weights and float32
// sums for the others, but without a call per op: decoding a few rows is bound by the
// calls, not the arithmetic. It records no gradient (call it under NoGrad).
func (s *Scope) DecodeLayers(x *Tensor, layers []DecodeLayer, cos, sin, mask *Tensor, slot int, sh DecodeShape) *Tensor {
	in := []*Tensor{x, cos, sin}
	if mask != nil {
		in = append(in, mask)
	}
	if len(layers) == 0 {
		return s.failf("decode_layers", "no layers")
	}
	dw := func(w DecodeWeight) (C.pt_decode_weight, bool) {
		var d C.pt_decode_weight
		if w.Quantized != nil {
			in = append(in, w.Quantized.Q, w.Quantized.Scale, w.Quantized.Offset)
			d.q, d.scale, d.offset, d.bits = w.Quantized.Q.h, w.Quantized.Scale.h, w.Quantized.Offset.h, C.int(w.Quantized.Bits)
			if w.Bias != nil {
				in = append(in, w.Bias)
				d.bias = w.Bias.h
			}
			return d, true
		}
		if len(w.Float) == 0 || len(w.Float) > len(d.parts) || (w.FloatBias != nil && len(w.FloatBias) != len(w.Float)) {
			return d, false
		}
		d.bits, d.nparts = 32, C.int(len(w.Float))
		for i, p := range w.Float {
			in = append(in, p)
			d.parts[i] = p.h
			if w.FloatBias != nil {
				in = append(in, w.FloatBias[i])
				d.part_biases[i] = w.FloatBias[i].h
			}
		}
		return d, true
	}
	cl := make([]C.pt_decode_layer, len(layers))
	for i, l := range layers {
		var ok [4]bool
		cl[i].qkv, ok[0] = dw(l.QKV)
		cl[i].o, ok[1] = dw(l.O)
		cl[i].gate_up, ok[2] = dw(l.GateUp)
		cl[i].down, ok[3] = dw(l.Down)
		if ok != [4]bool{true, true, true, true} || l.InputNorm == nil || l.PostNorm == nil || l.Keys == nil || l.Values == nil {
			return s.failf("decode_layers", "layer %d lacks a weight, a norm or its cache", i)
		}
		in = append(in, l.InputNorm, l.PostNorm, l.Keys, l.Values)
		cl[i].input_norm, cl[i].post_norm, cl[i].keys, cl[i].values = l.InputNorm.h, l.PostNorm.h, l.Keys.h, l.Values.h
		if (l.QNorm == nil) != (l.KNorm == nil) {
			return s.failf("decode_layers", "layer %d has a query norm without a key norm, or the reverse", i)
		}
		if l.QNorm != nil {
			in = append(in, l.QNorm, l.KNorm)
			cl[i].q_norm, cl[i].k_norm = l.QNorm.h, l.KNorm.h
		}
	}
	if !s.ok("decode_layers", in...) {
		return nil
	}
	var mh C.pt_tensor
	if mask != nil {
		mh = mask.h
	}
	var h C.pt_tensor
	return s.result("decode_layers", C.pt_decode_layers(x.h, &cl[0], C.int(len(cl)), cos.h, sin.h, mh, C.int64_t(slot),
		C.int(sh.Heads), C.int(sh.KVHeads), C.int(sh.HeadDim), C.double(sh.Eps), &h), h)
}
