package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Quantization for writing GGUF files. F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 follow
// the gguf Python package's quantize_blocks (and ggml-quants.c's reference quantizers) bit
// for bit, Q4_K llama.cpp's reference quantizer (quantize_k.go); the tests compare them on
// committed random rows.

// quantizers encode a whole array of float32 values as a type (len(v) whole blocks).
var quantizers = map[Type]func(dst []byte, v []float32){
	F32: func(dst []byte, v []float32) {
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	},
	F16: func(dst []byte, v []float32) {
		for i, x := range v {
			binary.LittleEndian.PutUint16(dst[2*i:], toHalf(x))
		}
	},
	BF16: func(dst []byte, v []float32) {
		for i, x := range v {
			binary.LittleEndian.PutUint16(dst[2*i:], toBF16(x))
		}
	},
	Q4_0: blocks(Q4_0, quantQ4_0), Q4_1: blocks(Q4_1, quantQ4_1), Q5_0: blocks(Q5_0, quantQ5_0), Q5_1: blocks(Q5_1, quantQ5_1),
	Q8_0: blocks(Q8_0, quantQ8_0), Q4_K: blocks(Q4_K, quantQ4_K),
}

// blocks applies a one-block quantizer of type t block by block.
func blocks(t Type, q func(dst []byte, v []float32)) func(dst []byte, v []float32) {
	bs, ts := t.BlockSize(), t.TypeSize()
	return func(dst []byte, v []float32) {
		for b := 0; b < len(v)/bs; b++ {
			q(dst[b*ts:(b+1)*ts], v[b*bs:(b+1)*bs])
		}
	}
}

// CanQuantize reports whether Quantize writes type t.
func CanQuantize(t Type) bool { _, ok := quantizers[t]; return ok }

// Quantize encodes float32 values as type t; len(v) must be whole blocks of t.
func Quantize(t Type, v []float32) ([]byte, error) {
	q, ok := quantizers[t]
	if !ok {
		var names []string
		for _, e := range exportable {
			names = append(names, e.t.String())
		}
		return nil, fmt.Errorf("gguf: quantizing to %s is not supported (%s are)", t, strings.Join(names, ", "))
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(v)%bs != 0 {
		return nil, fmt.Errorf("gguf: %d values are not whole %s blocks of %d", len(v), t, bs)
	}
	out := make([]byte, len(v)/bs*ts)
	q(out, v)
	return out, nil
}

// toHalf rounds x to the nearest IEEE binary16 (ties to even), as numpy's astype(float16).
func toHalf(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // inf or nan (a nan keeps a set quiet bit)
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	case exp-127 > 15: // too large: inf
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e <= 0 { // subnormal half (or zero)
		if e < -10 {
			return sign
		}
		m := mant | 0x800000 // implicit bit
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to inf: that is the correct rounding
	}
	return sign | uint16(h)
}

// toBF16 is ggml_compute_fp32_to_bf16: nan made quiet, otherwise round to nearest even.
func toBF16(x float32) uint16 {
	n := math.Float32bits(x)
	if n&0x7fffffff > 0x7f800000 {
		return uint16((n&0xffff0000 | 64<<16) >> 16)
	}
	return uint16((uint64(n) + uint64(0x7fff+(n>>16)&1)) >> 16)
}

// quantQ8_0 encodes 32 values: d = max|x|/127 (stored as float16), q = round(x/d) with
// ties away from zero (the gguf package's np_roundf).
func quantQ8_0(dst []byte, v []float32) {
	var amax float32
	for _, x := range v {
		amax = max(amax, float32(math.Abs(float64(x))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, toHalf(d))
	for j, x := range v {
		p := x * id
		a := float32(math.Abs(float64(p)))
		f := float32(math.Floor(float64(a)))
		r := f + float32(math.Floor(float64(2*(a-f))))
		if p < 0 {
			r = -r
		}
		dst[2+j] = uint8(int8(r))
	}
}

// absMax is the value of largest magnitude (the first of equals), +0 when every value is
// zero, as ggml's reference quantizers start from +0.
func absMax(v []float32) float32 {
	var amax, m float32
	for _, x := range v {
		if a := abs32(x); amax < a {
			amax, m = a, x
		}
	}
	return m
}

// minMax is the smallest and largest value (the first of equals, so that of 0 and -0 the
// reference's pick is kept).
func minMax(v []float32) (lo, hi float32) {
	lo, hi = v[0], v[0]
	for _, x := range v[1:] {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	return lo, hi
}

func reciprocal(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// level truncates f toward zero and caps it at top (the reference's MIN(top, (int8_t)f)).
func level(f float32, top int8) uint8 { return uint8(min(top, int8(f))) }

// quantQ4_0 encodes 32 values as d = m/-8 (m the value of largest magnitude) and 4-bit
// levels trunc(x/d + 8.5).
func quantQ4_0(dst []byte, v []float32) {
	d := absMax(v) / -8
	id := reciprocal(d)
	binary.LittleEndian.PutUint16(dst, toHalf(d))
	var l [32]uint8
	for j, x := range v {
		l[j] = level(float32(x*id)+8.5, 15)
	}
	packLevels(dst[2:], &l, false)
}

// quantQ4_1 encodes 32 values as d = (max-min)/15, the minimum, and 4-bit levels
// trunc((x-min)/d + 0.5).
func quantQ4_1(dst []byte, v []float32) { quantMin(dst, v, 15) }

// quantQ5_0 is Q4_0 with 5-bit levels (d = m/-16, offset 16.5).
func quantQ5_0(dst []byte, v []float32) {
	d := absMax(v) / -16
	id := reciprocal(d)
	binary.LittleEndian.PutUint16(dst, toHalf(d))
	var l [32]uint8
	for j, x := range v {
		l[j] = level(float32(x*id)+16.5, 31)
	}
	packLevels(dst[2:], &l, true)
}

// quantQ5_1 is Q4_1 with 5-bit levels (d = (max-min)/31).
func quantQ5_1(dst []byte, v []float32) { quantMin(dst, v, 31) }

// quantMin encodes 32 values as Q4_1 (top 15) or Q5_1 (top 31): d = (max-min)/top, the
// minimum, and levels trunc((x-min)/d + 0.5).
func quantMin(dst []byte, v []float32, top int8) {
	lo, hi := minMax(v)
	d := (hi - lo) / float32(top)
	id := reciprocal(d)
	binary.LittleEndian.PutUint16(dst, toHalf(d))
	binary.LittleEndian.PutUint16(dst[2:], toHalf(lo))
	var l [32]uint8
	for j, x := range v {
		l[j] = level(float32((x-lo)*id)+0.5, top)
	}
	packLevels(dst[4:], &l, top == 31)
}

// packLevels writes 32 levels as the 32-value types store them: with five bits, first a
// little-endian 32-bit word of the fifth bits (bit j of level j); then 16 bytes of low
// nibbles, level j in the low half of byte j and level j+16 in the high half.
func packLevels(dst []byte, l *[32]uint8, fiveBits bool) {
	if fiveBits {
		var qh uint32
		for j, x := range l {
			qh |= uint32(x>>4) << j
		}
		binary.LittleEndian.PutUint32(dst, qh)
		dst = dst[4:]
	}
	for j := 0; j < 16; j++ {
		dst[j] = l[j]&0xf | (l[j+16]&0xf)<<4
	}
}
