package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Dequantization follows ggml-quants.c's dequantize_row_* and the gguf Python package's
// dequantize_blocks, which the tests match bit for bit: every product and sum is rounded
// to float32 as numpy rounds it. The explicit float32 conversions are there to stop the
// compiler fusing a multiply and an add (the Go spec allows fusion otherwise), which
// would round once where the reference rounds twice.

// blockFunc dequantizes one block of raw bytes into dst (BlockSize elements).
type blockFunc func(dst []float32, b []byte)

var dequantizers = map[Type]blockFunc{
	F32:  func(d []float32, b []byte) { d[0] = math.Float32frombits(binary.LittleEndian.Uint32(b)) },
	F16:  func(d []float32, b []byte) { d[0] = half(b) },
	BF16: func(d []float32, b []byte) { d[0] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) },
	Q4_0: deqQ4_0, Q4_1: deqQ4_1, Q5_0: deqQ5_0, Q5_1: deqQ5_1, Q8_0: deqQ8_0,
	Q2_K: deqQ2_K, Q3_K: deqQ3_K, Q4_K: deqQ4_K, Q5_K: deqQ5_K, Q6_K: deqQ6_K,
}

// Dequantize turns n elements stored as type t in raw into float32, using every CPU for
// large tensors.
func Dequantize(t Type, raw []byte, n int) ([]float32, error) {
	out := make([]float32, n)
	if err := DequantizeInto(out, t, raw); err != nil {
		return nil, err
	}
	return out, nil
}

// DequantizeInto is Dequantize into dst, whose length is the element count.
func DequantizeInto(dst []float32, t Type, raw []byte) error {
	deq, ok := dequantizers[t]
	if !ok {
		return fmt.Errorf("gguf: dequantizing %s is not supported (supported: %v)", t, supportedTypes())
	}
	n := len(dst)
	bs, ts := t.BlockSize(), t.TypeSize()
	if n%bs != 0 || len(raw) != n/bs*ts {
		return fmt.Errorf("gguf: %d elements of %s need %d bytes, got %d", n, t, n/bs*ts, len(raw))
	}
	blocks := n / bs
	work := func(from, to int) {
		for i := from; i < to; i++ {
			deq(dst[i*bs:(i+1)*bs:(i+1)*bs], raw[i*ts:(i+1)*ts:(i+1)*ts])
		}
	}
	const serial = 1 << 16 // elements below which threads cost more than they give
	threads := runtime.GOMAXPROCS(0)
	if n < serial || threads == 1 {
		work(0, blocks)
		return nil
	}
	var wg sync.WaitGroup
	per := (blocks + threads - 1) / threads
	for from := 0; from < blocks; from += per {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			work(from, to)
		}(from, min(from+per, blocks))
	}
	wg.Wait()
	return nil
}

func supportedTypes() []Type {
	return []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}
}

// Float32 returns a tensor's elements as float32, in row-major order of Shape.
func (f *File) Float32(t TensorInfo) ([]float32, error) {
	v, err := Dequantize(t.Type, f.Raw(t), int(t.Elements()))
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.Path, t.Name, err)
	}
	return v, nil
}

// half converts the IEEE binary16 at b[0:2] to float32, exactly.
func half(b []byte) float32 { return halfBits(binary.LittleEndian.Uint16(b)) }

func halfBits(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or nan
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: frac × 2^-24, exact in float32
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

func deqQ4_0(dst []float32, b []byte) {
	d := half(b)
	qs := b[2:18]
	lo, hi := dst[:16], dst[16:32]
	for j, q := range qs {
		lo[j] = d * float32(int(q&0xf)-8)
		hi[j] = d * float32(int(q>>4)-8)
	}
}

func deqQ4_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	qs := b[4:20]
	lo, hi := dst[:16], dst[16:32]
	for j, q := range qs {
		lo[j] = float32(d*float32(q&0xf)) + m
		hi[j] = float32(d*float32(q>>4)) + m
	}
}

func deqQ5_0(dst []float32, b []byte) {
	d := half(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := 0; j < 16; j++ {
		lo := int(qs[j]&0xf) | int((qh>>j)&1)<<4
		hi := int(qs[j]>>4) | int((qh>>(j+16))&1)<<4
		dst[j] = d * float32(lo-16)
		dst[j+16] = d * float32(hi-16)
	}
}

func deqQ5_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := 0; j < 16; j++ {
		lo := qs[j]&0xf | uint8((qh>>j)&1)<<4
		hi := qs[j]>>4 | uint8((qh>>(j+16))&1)<<4
		dst[j] = float32(d*float32(lo)) + m
		dst[j+16] = float32(d*float32(hi)) + m
	}
}

func deqQ8_0(dst []float32, b []byte) {
	d := half(b)
	out := dst[:32]
	for j, q := range b[2:34] {
		out[j] = float32(int8(q)) * d
	}
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit values, d, dmin.
func deqQ2_K(dst []float32, b []byte) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := half(b[80:]), half(b[82:])
	for e := 0; e < qkK; e++ {
		h, k, l := e/128, (e%128)/32, e%32
		q := (qs[h*32+l] >> (2 * k)) & 3
		sc := scales[e/16]
		dl := d * float32(sc&0xf)
		ml := dmin * float32(sc>>4)
		dst[e] = float32(dl*float32(q)) - ml
	}
}

// Q3_K: 32 bytes of high bits, 64 bytes of low 2 bits, 12 bytes of 6-bit scales, d.
func deqQ3_K(dst []float32, b []byte) {
	hmask, qs, sb := b[0:32], b[32:96], b[96:108]
	d := half(b[108:])
	var dl [16]float32
	for i := 0; i < 16; i++ {
		lo := sb[i%8] >> (4 * (i / 8)) & 0xf
		hi := sb[8+i%4] >> (2 * (i / 4)) & 3
		dl[i] = d * float32(int8(lo|hi<<4)-32)
	}
	for e := 0; e < qkK; e++ {
		h, k, l := e/128, (e%128)/32, e%32
		ql := int8((qs[h*32+l] >> (2 * k)) & 3)
		hb := (hmask[l] >> (e / 32)) & 1
		q := ql - int8((hb^1)<<2)
		dst[e] = dl[e/16] * float32(q)
	}
}

// scaleMinK4 unpacks the eight 6-bit scales and mins of a Q4_K / Q5_K block.
func scaleMinK4(s []byte) (sc, mn [8]uint8) {
	for j := 0; j < 4; j++ {
		sc[j] = s[j] & 0x3f
		mn[j] = s[4+j] & 0x3f
		sc[4+j] = s[8+j]&0xf | (s[j]>>2)&0x30
		mn[4+j] = s[8+j]>>4 | (s[4+j]>>2)&0x30
	}
	return sc, mn
}

// Q4_K: d, dmin, 12 bytes of scales and mins, 128 bytes of 4-bit values (8 groups of 32).
func deqQ4_K(dst []float32, b []byte) {
	d, dmin := half(b), half(b[2:])
	sc, mn := scaleMinK4(b[4:16])
	qs := b[16:144]
	for s := 0; s < 8; s++ {
		ds := d * float32(sc[s])
		dm := dmin * float32(mn[s])
		c, shift := s/2, 4*(s%2)
		for l := 0; l < 32; l++ {
			q := (qs[c*32+l] >> shift) & 0xf
			dst[s*32+l] = float32(ds*float32(q)) - dm
		}
	}
}

// Q5_K: as Q4_K with 32 bytes of fifth bits before the 4-bit values.
func deqQ5_K(dst []float32, b []byte) {
	d, dmin := half(b), half(b[2:])
	sc, mn := scaleMinK4(b[4:16])
	qh, qs := b[16:48], b[48:176]
	for s := 0; s < 8; s++ {
		ds := d * float32(sc[s])
		dm := dmin * float32(mn[s])
		c, shift := s/2, 4*(s%2)
		for l := 0; l < 32; l++ {
			q := (qs[c*32+l]>>shift)&0xf | ((qh[l]>>s)&1)<<4
			dst[s*32+l] = float32(ds*float32(q)) - dm
		}
	}
}

// Q6_K: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales, d.
func deqQ6_K(dst []float32, b []byte) {
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	d := half(b[208:])
	for e := 0; e < qkK; e++ {
		h, k, l := e/128, (e%128)/32, e%32
		lo := ql[h*64+(k%2)*32+l] >> (4 * (k / 2)) & 0xf
		hi := (qh[h*32+l] >> (2 * k)) & 3
		q := int8(lo|hi<<4) - 32
		dst[e] = float32(d*float32(int8(scales[e/16]))) * float32(q)
	}
}
