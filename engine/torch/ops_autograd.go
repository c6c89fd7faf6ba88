package torch

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// ---- in place -------------------------------------------------------------------------

func inPlace(op string, e C.pt_err) error { return check(op, e) }

// CopyFrom copies src's values into t (broadcasting, converting dtype and device).
func (t *Tensor) CopyFrom(src *Tensor) error {
	if t.Closed() || src.Closed() {
		return ErrClosed
	}
	return inPlace("copy_", C.pt_copy_(t.h, src.h))
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float64) error {
	if t.Closed() {
		return ErrClosed
	}
	return inPlace("fill_", C.pt_fill_(t.h, C.double(v)))
}

// AddInPlace is t += alpha*src.
func (t *Tensor) AddInPlace(src *Tensor, alpha float64) error {
	if t.Closed() || src.Closed() {
		return ErrClosed
	}
	return inPlace("add_", C.pt_add_(t.h, src.h, C.double(alpha)))
}

// MulInPlace is t *= v.
func (t *Tensor) MulInPlace(v float64) error {
	if t.Closed() {
		return ErrClosed
	}
	return inPlace("mul_", C.pt_mul_scalar_(t.h, C.double(v)))
}

// ---- autograd -------------------------------------------------------------------------

// SetRequiresGrad marks t (a leaf) as a parameter whose gradient backward computes.
func (t *Tensor) SetRequiresGrad(on bool) error {
	if t.Closed() {
		return ErrClosed
	}
	v := C.int(0)
	if on {
		v = 1
	}
	return check("requires_grad_", C.pt_set_requires_grad(t.h, v))
}

// Backward computes gradients of t (a scalar) with respect to every leaf that requires
// them, accumulating into their Grad.
func (t *Tensor) Backward() error {
	if t.Closed() {
		return ErrClosed
	}
	return check("backward", C.pt_backward(t.h, nil, 0))
}

// Grad returns t's accumulated gradient in s, or nil (without error) when it has none.
func (s *Scope) Grad(t *Tensor) *Tensor {
	if !s.ok("grad", t) {
		return nil
	}
	var h C.pt_tensor
	if err := check("grad", C.pt_grad(t.h, &h)); err != nil {
		return s.fail(err)
	}
	if h == nil {
		return nil
	}
	return s.adopt(h)
}

// Gradients returns the gradients of the scalar loss with respect to inputs, in s (nil
// where loss does not depend on an input), as torch.autograd.grad: nothing is
// accumulated into the inputs' Grad, and loss's graph is freed.
func (s *Scope) Gradients(loss *Tensor, inputs []*Tensor) []*Tensor {
	if !s.ok("autograd.grad", loss) || len(inputs) == 0 {
		return nil
	}
	hs, err := handlesOf(inputs)
	if err != nil {
		s.fail(fmt.Errorf("torch: autograd.grad: %w", err))
		return nil
	}
	out := make([]C.pt_tensor, len(inputs))
	if err := check("autograd.grad", C.pt_autograd_grad(loss.h, &hs[0], C.int(len(hs)), &out[0])); err != nil {
		s.fail(err)
		return nil
	}
	gs := make([]*Tensor, len(inputs))
	for i, h := range out {
		if h != nil {
			gs[i] = s.adopt(h)
		}
	}
	return gs
}

// AccumulateGrad adds g to t's gradient (an undefined gradient becomes g, sharing its
// memory: do not modify g afterwards).
func (t *Tensor) AccumulateGrad(g *Tensor) error {
	if t.Closed() || g.Closed() {
		return ErrClosed
	}
	return check("accumulate_grad", C.pt_accumulate_grad(t.h, g.h))
}

func handlesOf(ts []*Tensor) ([]C.pt_tensor, error) {
	hs := make([]C.pt_tensor, len(ts))
	for i, t := range ts {
		if t.Closed() {
			return nil, fmt.Errorf("tensor %d: %w", i, ErrClosed)
		}
		hs[i] = t.h
	}
	return hs, nil
}

// ZeroGrad drops the gradients of params (they become undefined, as set_to_none=True).
func ZeroGrad(params []*Tensor) error {
	if len(params) == 0 {
		return nil
	}
	hs, err := handlesOf(params)
	if err != nil {
		return err
	}
	return check("zero_grad", C.pt_zero_grad(&hs[0], C.int(len(hs))))
}

// NoGrad runs f with gradient recording off. libtorch keeps this mode per OS thread, so
// the goroutine stays on its thread until f returns.
func NoGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.pt_set_grad_enabled(0)
	defer C.pt_set_grad_enabled(prev)
	return f()
}

// Autocast runs f with automatic mixed precision on dev's type: matrix products and
// attention compute in dtype (bfloat16 or float16) while parameters stay as they are, as
// torch.autocast does. The mode is per OS thread, so the goroutine stays on its thread.
// Run backward outside f.
func Autocast(dev Device, dtype DType, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prevOn C.int
	var prevDType C.int32_t
	if err := check("autocast", C.pt_set_autocast(C.int32_t(dev.Type), 1, C.int32_t(dtype), &prevOn, &prevDType)); err != nil {
		return err
	}
	defer func() {
		var on C.int
		var dt C.int32_t
		_ = check("autocast", C.pt_set_autocast(C.int32_t(dev.Type), prevOn, prevDType, &on, &dt))
	}()
	return f()
}

// GradEnabled reports whether gradient recording is on for the calling thread.
func GradEnabled() bool { return C.pt_is_grad_enabled() != 0 }

// ---- optimisation -----------------------------------------------------------------------

// AdamWConfig holds AdamW's hyperparameters.
type AdamWConfig struct {
	LR          float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
}

// AdamWStep applies one AdamW update (decoupled weight decay, bias-corrected moments)
// to params using their gradients; m and v are the first and second moments, step the
// 1-based number of this update. Parameters without gradients are left alone.
func AdamWStep(params, m, v []*Tensor, step int64, c AdamWConfig) error {
	if len(params) != len(m) || len(params) != len(v) {
		return &Error{Op: "adamw", Msg: fmt.Sprintf("%d params but %d and %d moment tensors", len(params), len(m), len(v))}
	}
	if len(params) == 0 {
		return nil
	}
	if step < 1 {
		return &Error{Op: "adamw", Msg: fmt.Sprintf("step must be >= 1, got %d", step)}
	}
	ph, err := handlesOf(params)
	if err != nil {
		return err
	}
	mh, err := handlesOf(m)
	if err != nil {
		return err
	}
	vh, err := handlesOf(v)
	if err != nil {
		return err
	}
	return check("adamw", C.pt_adamw_step(&ph[0], &mh[0], &vh[0], C.int(len(ph)), C.int64_t(step),
		C.double(c.LR), C.double(c.Beta1), C.double(c.Beta2), C.double(c.Eps), C.double(c.WeightDecay)))
}

// ClipGradNorm scales the gradients of params so their global L2 norm is at most maxNorm
// (maxNorm <= 0 only measures) and returns the norm before clipping.
func ClipGradNorm(params []*Tensor, maxNorm float64) (float64, error) {
	if len(params) == 0 {
		return 0, nil
	}
	hs, err := handlesOf(params)
	if err != nil {
		return 0, err
	}
	var total C.double
	if err := check("clip_grad_norm", C.pt_clip_grad_norm(&hs[0], C.int(len(hs)), C.double(maxNorm), &total)); err != nil {
		return 0, err
	}
	return float64(total), nil
}
