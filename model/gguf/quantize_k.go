package gguf

import (
	"encoding/binary"
	"math"
)

// Q4_K, as llama.cpp's reference quantizer makes it (quantize_row_q4_K_ref in
// ggml-quants.c, what llama-quantize runs without an importance matrix). A block is 256
// values in 8 sub-blocks of 32; each sub-block gets a scale and a minimum fitted by
// weighted least squares over a few candidate grids (fitScaleMin), which are then coded
// as 6-bit multiples of the block's float16 d and dmin. The arithmetic is single
// precision throughout, each product rounded before it is added (the explicit float32
// conversions keep a compiler from fusing them), so the bytes are llama.cpp's own; the
// tests compare them on rows that reference quantizer wrote.

// quantQ4_K encodes 256 values into a 144-byte block: d, dmin, 12 bytes of scales and
// minimums, 128 bytes of 4-bit values.
func quantQ4_K(dst []byte, x []float32) {
	var L [256]uint8
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		sub := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range sub {
			sumX2 += float32(v * v)
		}
		avg := float32(math.Sqrt(float64(sumX2 / 32)))
		var w [32]float32
		for l, v := range sub {
			w[l] = avg + abs32(v)
		}
		scales[j], mins[j] = fitScaleMin(sub, w[:], L[32*j:32*j+32], 15, -1, 0.1, 20)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sm := dst[4:16]
	clear(sm)
	for j := 0; j < 8; j++ {
		// to a byte first, then capped, as the reference does
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sm[j], sm[j+4] = ls, lm
		} else {
			sm[j+4] = ls&0xf | (lm&0xf)<<4
			sm[j-4] |= (ls >> 4) << 6
			sm[j] |= (lm >> 4) << 6
		}
	}
	binary.LittleEndian.PutUint16(dst, toHalf(maxScale/63))
	binary.LittleEndian.PutUint16(dst[2:], toHalf(maxMin/63))
	d, dmin := half(dst), half(dst[2:])
	sc, mn := scaleMinK4(sm)
	for j := 0; j < 8; j++ {
		ds := float32(d * float32(sc[j]))
		if ds == 0 {
			continue // the sub-block keeps the levels its own fit chose
		}
		dm := float32(dmin * float32(mn[j]))
		for i := 0; i < 32; i++ {
			L[32*j+i] = uint8(min(15, max(0, nearestInt(float32(x[32*j+i]+dm)/ds))))
		}
	}
	qs := dst[16:144]
	for j := 0; j < 256; j += 64 {
		for l := 0; l < 32; l++ {
			qs[j/2+l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

// fitScaleMin (llama.cpp's make_qkx2_quants) chooses levels L[i] in 0..nmax, a scale and
// a minimum m <= 0 so that scale*L[i] + m approximates x[i] with the least weighted squared
// error: first the plain grid from min(x) to max(x), then nstep+1 grids of
// (nmax + rmin + rdelta*k) steps over the same range, each refitted by weighted least
// squares (the minimum clamped at 0). It returns the scale and -m.
func fitScaleMin(x, w []float32, L []uint8, nmax int, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L)
		return 0, -lo
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		L[i] = uint8(min(nmax, max(0, nearestInt(float32(iscale*(v-lo))))))
		diff := float32(scale*float32(L[i])) + lo - v
		bestErr += float32(w[i] * float32(diff*diff))
	}
	var aux [32]uint8
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := min(nmax, max(0, nearestInt(float32(iscale*(v-lo)))))
			aux[i] = uint8(l)
			wl := float32(w[i] * float32(l))
			sumL += wl
			sumL2 += float32(wl * float32(l))
			sumXL += float32(wl * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(D > 0) {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curErr float32
		for i, v := range x {
			diff := float32(thisScale*float32(aux[i])) + thisMin - v
			curErr += float32(w[i] * float32(diff*diff))
		}
		if curErr < bestErr {
			copy(L, aux[:len(x)])
			bestErr, scale, lo = curErr, thisScale, thisMin
		}
	}
	return scale, -lo
}

// nearestInt is ggml's nearest_int: adding 1.5 x 2^23 in float32 rounds to the nearest
// integer (ties to even) for |v| < 2^22, and the low mantissa bits are read as it reads
// them, so that infinities and NaN (weights beyond float16's range) give what it gives.
func nearestInt(v float32) int {
	f := v + 12582912
	return int(math.Float32bits(f)&0x007fffff) - 0x00400000
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
