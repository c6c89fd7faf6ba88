package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantization for writing GGUF files. F16, BF16 and Q8_0 follow the gguf Python package's
// quantize_blocks (and ggml-quants.c's reference quantizers) bit for bit; the tests
// compare them on committed random rows.

// CanQuantize reports whether Quantize writes type t.
func CanQuantize(t Type) bool {
	switch t {
	case F32, F16, BF16, Q8_0:
		return true
	}
	return false
}

// Quantize encodes float32 values as type t; len(v) must be whole blocks of t.
func Quantize(t Type, v []float32) ([]byte, error) {
	if !CanQuantize(t) {
		return nil, fmt.Errorf("gguf: quantizing to %s is not supported (F32, F16, BF16 and Q8_0 are)", t)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(v)%bs != 0 {
		return nil, fmt.Errorf("gguf: %d values are not whole %s blocks of %d", len(v), t, bs)
	}
	out := make([]byte, len(v)/bs*ts)
	switch t {
	case F32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], toHalf(x))
		}
	case BF16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], toBF16(x))
		}
	case Q8_0:
		for b := 0; b < len(v)/32; b++ {
			quantQ8_0(out[b*34:(b+1)*34], v[b*32:(b+1)*32])
		}
	}
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
