package torch_test

import (
	"math"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// These tests run where libtorch_cuda loads and a GPU is visible; elsewhere they skip.

func needCUDA(t *testing.T) {
	t.Helper()
	if !torch.CUDAAvailable() {
		t.Skip(torch.CUDAStatus())
	}
}

func closeTo(t *testing.T, what string, a, b []float32, eps float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: lengths %d and %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Abs(float64(a[i])-float64(b[i])) > eps*(1+math.Abs(float64(b[i]))) {
			t.Fatalf("%s: [%d] cuda %v, cpu %v", what, i, a[i], b[i])
		}
	}
}

// TestCUDAMatchesCPU runs the decoder's ops forward and backward on both devices from the
// same inputs.
func TestCUDAMatchesCPU(t *testing.T) {
	needCUDA(t)
	s := scope(t)
	g, _ := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	xCPU := s.Randn([]int64{2, 4, 6, 8}, torch.Float32, torch.CPU, g)
	kCPU := s.Randn([]int64{2, 2, 6, 8}, torch.Float32, torch.CPU, g)
	wCPU := s.Randn([]int64{8}, torch.Float32, torch.CPU, g)
	run := func(dev torch.Device) (out, gx []float32) {
		// Detach gives a fresh leaf even when To returns xCPU itself (same device and dtype).
		x := s.Detach(s.To(xCPU, torch.Float32, dev))
		k := s.To(kCPU, torch.Float32, dev)
		w := s.To(wCPU, torch.Float32, dev)
		if err := x.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		h := s.RMSNorm(x, w, 1e-6)
		a := s.Attention(h, k, k, torch.AttentionOptions{Causal: true})
		y := s.Sum(s.Mul(s.Silu(a), s.Softmax(a, -1)))
		if err := y.Backward(); err != nil {
			t.Fatal(err)
		}
		return f32(t, s.To(a, torch.Float32, torch.CPU)), f32(t, s.To(s.Grad(x), torch.Float32, torch.CPU))
	}
	oc, gc := run(torch.CPU)
	og, gg := run(torch.CUDA(0))
	closeTo(t, "attention output", og, oc, 1e-4)
	closeTo(t, "input gradient", gg, gc, 1e-3)
}

func TestCUDAAdamWAndClip(t *testing.T) {
	needCUDA(t)
	s := scope(t)
	step := func(dev torch.Device) []float32 {
		p := s.Float32s([]float32{0.5, -1, 2, 3}, []int64{4}, dev)
		_ = p.SetRequiresGrad(true)
		m := s.Zeros([]int64{4}, torch.Float32, dev)
		v := s.Zeros([]int64{4}, torch.Float32, dev)
		for i := int64(1); i <= 3; i++ {
			_ = torch.ZeroGrad([]*torch.Tensor{p})
			if err := s.Sum(s.Mul(p, p)).Backward(); err != nil {
				t.Fatal(err)
			}
			if _, err := torch.ClipGradNorm([]*torch.Tensor{p}, 1); err != nil {
				t.Fatal(err)
			}
			if err := torch.AdamWStep([]*torch.Tensor{p}, []*torch.Tensor{m}, []*torch.Tensor{v}, i,
				torch.AdamWConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}); err != nil {
				t.Fatal(err)
			}
		}
		return f32(t, s.To(p, torch.Float32, torch.CPU))
	}
	closeTo(t, "adamw", step(torch.CUDA(0)), step(torch.CPU), 1e-5)
}

func TestCUDAGeneratorAndTransfers(t *testing.T) {
	needCUDA(t)
	s := scope(t)
	draw := func() []float32 {
		g, err := torch.NewGenerator(5, torch.CUDA(0))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		return f32(t, s.To(s.Randn([]int64{64}, torch.Float32, torch.CUDA(0), g), torch.Float32, torch.CPU))
	}
	closeTo(t, "seeded cuda randn", draw(), draw(), 0)
	x := s.Float32s([]float32{1.5, -2, 3}, []int64{3}, torch.CUDA(0))
	if d := x.Device(); d.Type != torch.DeviceCUDA {
		t.Fatalf("device %v", d)
	}
	bf := s.To(x, torch.BFloat16, torch.CUDA(0))
	closeTo(t, "bf16 round trip", f32(t, s.To(bf, torch.Float32, torch.CPU)), []float32{1.5, -2, 3}, 0)
	if v, err := s.Sum(x).Item(); err != nil || v != 2.5 {
		t.Fatalf("item on cuda: %v %v", v, err)
	}
	if err := torch.Synchronize(torch.CUDA(0)); err != nil {
		t.Fatal(err)
	}
}
