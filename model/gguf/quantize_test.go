package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"testing"
)

// TestQuantizeBitExact compares F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 encoding with
// gguf.quants.quantize block by block on the fixture's rows (zeros, subnormals, overflow,
// ties, scales from 1e-3 to 1e2), where gguf-py and ggml agree (signedZeroScale).
func TestQuantizeBitExact(t *testing.T) {
	f := openFixture(t)
	for _, typ := range []Type{F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1} {
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
		w := f.Raw(want)
		if len(got) != len(w) {
			t.Fatalf("%s: %d bytes, gguf-py %d", typ, len(got), len(w))
		}
		bs, ts := typ.BlockSize(), typ.TypeSize()
		for b := 0; b < len(got)/ts; b++ {
			g, wb := got[b*ts:(b+1)*ts], w[b*ts:(b+1)*ts]
			if bytes.Equal(g, wb) {
				continue
			}
			if signedZeroScale(typ, v[b*bs:(b+1)*bs], g, wb) {
				continue
			}
			n := 0
			for g[n] == wb[n] {
				n++
			}
			t.Errorf("%s: block %d: first difference at byte %d (%#02x, gguf-py %#02x)", typ, b, n, g[n], wb[n])
		}
	}
}

// signedZeroScale is the one place gguf-py and ggml's C quantizers part: a Q4_0 / Q5_0
// block whose values are all zeros of either sign. ggml starts its "value of largest
// magnitude" at +0 and keeps it (d = +0 / -8 = -0, float16 0x8000); gguf-py takes the
// block's first value (-0 gives d = +0). Pioneer follows ggml; both decode to zeros.
func signedZeroScale(typ Type, v []float32, got, want []byte) bool {
	if typ != Q4_0 && typ != Q5_0 {
		return false
	}
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return got[0] == 0 && got[1] == 0x80 && want[0] == 0 && want[1] == 0 && bytes.Equal(got[2:], want[2:])
}

// TestQuantizeQ4KMatchesLlamaCpp compares Q4_K encoding with llama.cpp's reference
// quantizer on rows scripts/gen_q4k_fixture.sh wrote (weight-like, one-signed, zero,
// constant, heavy-tailed, tiny, huge and mixed sub-blocks), and checks that the blocks
// dequantize to within a Q4_K step of the input.
func TestQuantizeQ4KMatchesLlamaCpp(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/gguf/q4_k_in.f32")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../testdata/gguf/q4_k_ref.bin")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	got, err := Quantize(Q4_K, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != len(x)/256*144 {
		t.Fatalf("%d bytes, llama.cpp %d, for %d values", len(got), len(want), len(x))
	}
	for b := 0; b < len(got)/144; b++ {
		if g, w := got[b*144:(b+1)*144], want[b*144:(b+1)*144]; !bytes.Equal(g, w) {
			n := 0
			for g[n] == w[n] {
				n++
			}
			t.Errorf("block %d (row %d): first difference at byte %d: %#02x, llama.cpp %#02x", b, b/2, n, g[n], w[n])
		}
	}
	back := make([]float32, 256)
	for b := 0; b < len(got)/144; b++ {
		deqQ4_K(back, got[b*144:(b+1)*144])
		in := x[b*256 : (b+1)*256]
		lo, hi := minMax(in)
		step := (max(hi, 0) - min(lo, 0)) / 15 // the coarsest grid a sub-block can get
		if step < 1e-3 {
			continue // d and dmin below float16's normal range: the grid is lost (as in llama.cpp, bytes checked above)
		}
		for i, v := range in {
			if d := math.Abs(float64(back[i] - v)); d > 1.5*float64(step)+1e-6 {
				t.Fatalf("block %d value %d: %v back as %v (step %v)", b, i, v, back[i], step)
			}
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
	if _, err := Quantize(Q4_K, make([]float32, 255)); err == nil {
		t.Error("255 values were quantized to Q4_K")
	}
	if _, err := Quantize(Q6_K, make([]float32, 256)); err == nil {
		t.Error("an unsupported type was accepted")
	}
}
