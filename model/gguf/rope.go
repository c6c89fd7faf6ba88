package gguf

import (
	"fmt"
	"math"
)

// Llama 3's rotary scaling ("rope_type": "llama3" in config.json) reaches GGUF files only
// as the tensor rope_freqs.weight: llama.cpp's converter divides each rotary frequency by
// a factor, 1 for the fast ones, `factor` for the slow ones, and a smooth blend between
// two wavelengths set by original_max_position_embeddings / high_freq_factor and /
// low_freq_factor. Reading such a file, the four parameters are recovered from the
// factors; writing one, the factors are computed from them.

// llama3Factors is the converter's rope_freqs for a head dimension dim and base theta.
func llama3Factors(theta float64, dim int, factor, low, high, orig float64) []float32 {
	out := make([]float32, dim/2)
	lowWave, highWave := orig/low, orig/high
	for i := range out {
		freq := 1 / math.Pow(theta, float64(2*i)/float64(dim))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(factor)
		default:
			smooth := (orig/wave - low) / (high - low)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out
}

// llama3Params recovers factor, low_freq_factor, high_freq_factor and
// original_max_position_embeddings from rope_freqs factors. factor is the largest. On the
// blended dimensions 1/f = 1/factor + s (1 - 1/factor), with s = (orig/wave - low) /
// (high - low) linear in 1/wave; the dimensions at 1 and at factor bound orig/high and
// orig/low. Many parameter sets give the same factors, so the guesses go from the most
// usual: Llama 3's low 1 and high 4 with orig fitted (8192 when the factors leave it
// free), then low 1 with high and orig fitted to two or more blended dimensions. The
// first guess whose factors are the file's (to 1e-4) is taken. ok is false when every
// factor is 1 (no scaling).
func llama3Params(factors []float32, theta float64, dim int) (factor, low, high, orig float64, ok bool, err error) {
	if !(theta > 0) || math.IsInf(theta, 0) {
		return 0, 0, 0, 0, false, fmt.Errorf("rope_freqs.weight with a rotary base of %v: want a positive, finite base", theta)
	}
	if dim <= 0 || dim%2 != 0 {
		return 0, 0, 0, 0, false, fmt.Errorf("rope_freqs.weight with a rotary dimension of %d: want a positive even one", dim)
	}
	if len(factors) != dim/2 {
		return 0, 0, 0, 0, false, fmt.Errorf("rope_freqs.weight has %d factors for a rotary dimension of %d (want %d)", len(factors), dim, dim/2)
	}
	for _, f := range factors {
		if !(f >= 1) || math.IsInf(float64(f), 0) {
			return 0, 0, 0, 0, false, fmt.Errorf("rope_freqs.weight holds %v: llama3 factors are finite and at least 1", f)
		}
		factor = max(factor, float64(f))
	}
	if factor == 1 {
		return 0, 0, 0, 0, false, nil
	}
	factor = roundNear(factor)
	x := func(i int) float64 { return math.Pow(theta, -float64(2*i)/float64(dim)) / (2 * math.Pi) } // 1 / wavelength
	var xs, ss []float64                                                                            // the blended dimensions: 1/wave and s
	lastOne, firstF := -1, -1                                                                       // the slowest dimension at 1, the fastest at factor
	for i, f := range factors {
		switch {
		case float64(f) <= 1+1e-6:
			lastOne = i
		case float64(f) >= factor*(1-1e-6):
			if firstF < 0 {
				firstF = i
			}
		default:
			xs = append(xs, x(i))
			ss = append(ss, (1/float64(f)-1/factor)/(1-1/factor))
		}
	}
	type guess struct{ low, high, orig float64 }
	var guesses []guess
	if len(xs) > 0 { // low 1, high 4: each blended dimension gives orig = (3s + 1) / x
		o := 0.0
		for k := range xs {
			o += (3*ss[k] + 1) / xs[k]
		}
		guesses = append(guesses, guess{1, 4, o / float64(len(xs))})
	} else if lastOne >= 0 && firstF >= 0 {
		// orig/4 above the last wavelength at 1, orig below the first at factor
		lo, hi := 4/x(lastOne), 1/x(firstF)
		o := math.Sqrt(lo * hi)
		if lo < 8192 && 8192 < hi {
			o = 8192
		}
		guesses = append(guesses, guess{1, 4, o})
	}
	if len(xs) >= 2 { // low 1, high and orig from the line through the blended dimensions
		var n, sx, sy, sxx, sxy float64
		for k := range xs {
			n, sx, sy, sxx, sxy = n+1, sx+xs[k], sy+ss[k], sxx+xs[k]*xs[k], sxy+xs[k]*ss[k]
		}
		a := (n*sxy - sx*sy) / (n*sxx - sx*sx) // orig / (high - low)
		b := (sy - a*sx) / n                   // -low / (high - low)
		if a > 0 && b < 0 {
			// low = 1 first, then the smallest whole low that makes orig (an integer in
			// config.json) whole
			guesses = append(guesses, guess{1, 1 - 1/b, -a / b})
			for low := 2.0; low <= 64; low++ {
				if o := -a * low / b; math.Abs(o-math.Round(o)) < 0.05 {
					guesses = append(guesses, guess{low, low * (1 - 1/b), math.Round(o)})
				}
			}
		}
	}
	for _, g := range guesses {
		low, high, orig = g.low, roundNear(g.high), roundNear(g.orig)
		if orig != math.Round(orig) || orig < 1 {
			continue // config.json's original_max_position_embeddings is a whole number
		}
		if matches(llama3Factors(theta, dim, factor, low, high, orig), factors) {
			return factor, low, high, orig, true, nil
		}
	}
	return 0, 0, 0, 0, false, fmt.Errorf("rope_freqs.weight: no llama3 scaling (factor %g; %d blended dimensions) gives these factors", factor, len(xs))
}

// roundNear rounds v to a whole number when it is within 1e-3 of one (releases use whole
// numbers; the file's float32 factors blur them).
func roundNear(v float64) float64 {
	if r := math.Round(v); math.Abs(v-r) < 1e-3*max(1, math.Abs(r)) {
		return r
	}
	return v
}

// matches: every factor within 1e-4 of the other (NaN matches nothing).
func matches(got, want []float32) bool {
	for i := range want {
		if !(math.Abs(float64(got[i])-float64(want[i])) <= 1e-4*float64(want[i])) {
			return false
		}
	}
	return true
}
