package gguf

import (
	"math"
	"slices"
	"testing"
)

// TestLlama3ParamsRoundTrip: the parameters recovered from the converter's factors give
// the same factors: Llama 3.1's and 3.2's exactly, others (low_freq_factor not 1) as an
// equivalent set; factors that no llama3 scaling makes are refused.
func TestLlama3ParamsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		theta                   float64
		dim                     int
		factor, low, high, orig float64
		exact                   bool
	}{
		{500000, 128, 8, 1, 4, 8192, true},   // Llama 3.1
		{500000, 64, 32, 1, 4, 8192, true},   // Llama 3.2 1B
		{500000, 24, 8, 1, 4, 32, true},      // testdata/models/llama3_rope: one blended dimension
		{10000, 64, 4, 1, 8, 2048, true},     // another high
		{500000, 128, 16, 2, 6, 4096, false}, // low 2: an equivalent set
		{500000, 128, 8, 3, 9, 8192, false},  // low 3: orig / low is not whole with low 1
	} {
		f := llama3Factors(c.theta, c.dim, c.factor, c.low, c.high, c.orig)
		factor, low, high, orig, ok, err := llama3Params(f, c.theta, c.dim)
		if err != nil || !ok {
			t.Fatalf("%+v: %v (ok %v)", c, err, ok)
		}
		if c.exact && (factor != c.factor || low != c.low || high != c.high || orig != c.orig) {
			t.Errorf("%+v: recovered %g %g %g %g", c, factor, low, high, orig)
		}
		if again := llama3Factors(c.theta, c.dim, factor, low, high, orig); !matches(again, f) {
			t.Errorf("%+v: recovered %g %g %g %g give %v, not %v", c, factor, low, high, orig, again, f)
		}
	}
	if _, _, _, _, ok, err := llama3Params(slices.Repeat([]float32{1}, 32), 500000, 64); ok || err != nil {
		t.Errorf("all factors 1: ok %v, err %v", ok, err)
	}
	bad := llama3Factors(500000, 128, 8, 1, 4, 8192)
	bad[40] = 3 // a blended-looking factor where llama3 scaling has none
	if _, _, _, _, _, err := llama3Params(bad, 500000, 128); err == nil {
		t.Error("factors off the llama3 curve were accepted")
	}
	if _, _, _, _, _, err := llama3Params([]float32{1, 0.5}, 10000, 4); err == nil {
		t.Error("a factor below 1 was accepted")
	}
	if _, _, _, _, _, err := llama3Params([]float32{1, 2, 3}, 10000, 4); err == nil {
		t.Error("a factor count that is not half the dimension was accepted")
	}
	for _, theta := range []float64{-10000, 0, math.Inf(1), math.NaN()} {
		if _, _, _, _, _, err := llama3Params(llama3Factors(500000, 128, 8, 1, 4, 8192), theta, 128); err == nil {
			t.Errorf("a rotary base of %v was accepted", theta)
		}
	}
	nan := llama3Factors(500000, 128, 8, 1, 4, 8192)
	nan[30] = float32(math.NaN())
	if _, _, _, _, _, err := llama3Params(nan, 500000, 128); err == nil {
		t.Error("a NaN factor was accepted")
	}
}
