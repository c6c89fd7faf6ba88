package model_test

import (
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// TestKVCacheCopyTo: rows and slots land where CopyTo says, in the order given, for
// consecutive and scattered rows; copies that do not fit are refused.
func TestKVCacheCopyTo(t *testing.T) {
	const layers, B, H, T, D = 2, 3, 2, 4, 3
	src, err := model.NewKVCache(layers, B, H, T, D, torch.Float32, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// value of (layer, row b, head h, slot j, d) = 1000*layer + 100*b + 10*j + d + h/10 (v: negated)
	val := func(l, b, h, j, d int) float32 { return float32(1000*l+100*b+10*j+d) + float32(h)/10 }
	s := torch.NewScope()
	defer s.Close()
	for l := 0; l < layers; l++ {
		k := make([]float32, 0, B*H*T*D)
		for b := 0; b < B; b++ {
			for h := 0; h < H; h++ {
				for j := 0; j < T; j++ {
					for d := 0; d < D; d++ {
						k = append(k, val(l, b, h, j, d))
					}
				}
			}
		}
		v := make([]float32, len(k))
		for i := range k {
			v[i] = -k[i]
		}
		shape := []int64{B, H, T, D}
		src.Update(s, l, s.Float32s(k, shape, torch.CPU), s.Float32s(v, shape, torch.CPU))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	src.Advance(T)
	for _, rows := range [][]int{{1, 2}, {2, 0}} {
		dst, err := model.NewKVCache(layers, 3, H, 6, D, torch.Float32, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		// slots [1, 4) of rows into dst rows [1, 3) at slot 2
		if err := src.CopyTo(dst, rows, 1, 4, 1, 2); err != nil {
			t.Fatal(err)
		}
		if err := dst.SetLen(5); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < layers; l++ {
			ks, vs := dst.Update(s, l, s.Zeros([]int64{3, H, 1, D}, torch.Float32, torch.CPU), s.Zeros([]int64{3, H, 1, D}, torch.Float32, torch.CPU))
			k, err := ks.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			v, _ := vs.Float32s()
			for b := 0; b < 3; b++ {
				for h := 0; h < H; h++ {
					for j := 0; j < 6; j++ {
						for d := 0; d < D; d++ {
							i := ((b*H+h)*6+j)*D + d
							want := float32(0)
							if b >= 1 && j >= 2 && j < 5 {
								want = val(l, rows[b-1], h, j-1, d)
							}
							if k[i] != want || v[i] != -want {
								t.Fatalf("rows %v, layer %d, row %d head %d slot %d: k %v v %v, want %v", rows, l, b, h, j, k[i], v[i], want)
							}
						}
					}
				}
			}
		}
		dst.Close()
	}
	dst, _ := model.NewKVCache(layers, 2, H, 3, D, torch.Float32, torch.CPU)
	defer dst.Close()
	for name, err := range map[string]error{
		"past the slots": src.CopyTo(dst, []int{0}, 0, 4, 0, 0),
		"past the rows":  src.CopyTo(dst, []int{0, 1}, 0, 1, 1, 0),
		"unknown row":    src.CopyTo(dst, []int{5}, 0, 1, 0, 0),
		"length":         dst.SetLen(4),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
