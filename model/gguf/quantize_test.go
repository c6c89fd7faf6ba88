package gguf

import (
	"bytes"
	"math"
	"testing"
)

// TestQuantizeBitExact compares F16, BF16 and Q8_0 encoding with gguf.quants.quantize on
// the fixture's rows (zeros, subnormals, overflow, ties and random values).
func TestQuantizeBitExact(t *testing.T) {
	f := openFixture(t)
	for _, typ := range []Type{F16, BF16, Q8_0} {
		in, ok := f.Tensor(typ.String() + ".quantize_in")
		want, ok2 := f.Tensor(typ.String() + ".quantized")
		if !ok || !ok2 {
			t.Fatalf("%s: fixture tensors missing", typ)
		}
		v, err := f.Float32(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Quantize(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		if w := f.Raw(want); !bytes.Equal(got, w) {
			n := 0
			for n < len(got) && n < len(w) && got[n] == w[n] {
				n++
			}
			t.Errorf("%s: %d bytes, gguf-py %d; first difference at byte %d", typ, len(got), len(w), n)
		}
	}
}

func TestHalfRoundTripsEveryHalf(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // nan payloads
		}
		x := halfBits(uint16(h))
		if got := toHalf(x); got != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, x, got)
		}
	}
	if got := toHalf(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("nan -> %#04x", got)
	}
}

func TestQuantizeRejectsPartialBlocks(t *testing.T) {
	if _, err := Quantize(Q8_0, make([]float32, 31)); err == nil {
		t.Error("31 values were quantized to Q8_0")
	}
	if _, err := Quantize(Q4_K, make([]float32, 256)); err == nil {
		t.Error("an unsupported type was accepted")
	}
}
