package training

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// AdamW holds AdamW's moments for a list of parameters.
type AdamW struct {
	Config torch.AdamWConfig
	params []*torch.Tensor
	m, v   []*torch.Tensor
	step   int64
	state  *torch.Scope
}

// DefaultAdamW is torch.optim.AdamW's default configuration with the given learning rate.
func DefaultAdamW(lr float64) torch.AdamWConfig {
	return torch.AdamWConfig{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// NewAdamW allocates zeroed moments for params, in each parameter's dtype and device (as
// torch.optim does).
func NewAdamW(params []*torch.Tensor, c torch.AdamWConfig) (*AdamW, error) {
	o := &AdamW{Config: c, params: params, state: torch.NewScope()}
	for _, p := range params {
		in, err := p.Info()
		if err != nil {
			o.Close()
			return nil, err
		}
		o.m = append(o.m, o.state.Zeros(in.Shape, in.DType, in.Device))
		o.v = append(o.v, o.state.Zeros(in.Shape, in.DType, in.Device))
	}
	if err := o.state.Err(); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// Step applies one update at learning rate lr.
func (o *AdamW) Step(lr float64) error {
	c := o.Config
	c.LR = lr
	o.step++
	return torch.AdamWStep(o.params, o.m, o.v, o.step, c)
}

// Steps is the number of updates applied so far.
func (o *AdamW) Steps() int64 { return o.step }

// Close frees the moments.
func (o *AdamW) Close() { o.state.Close() }

// StateTensors returns the moments under the names "exp_avg.NAME" and "exp_avg_sq.NAME"
// (names[i] belongs to params[i]) and the step count as metadata, for checkpoints.
func (o *AdamW) StateTensors(names []string) (map[string]*torch.Tensor, map[string]string, error) {
	if len(names) != len(o.params) {
		return nil, nil, fmt.Errorf("adamw state: %d names for %d parameters", len(names), len(o.params))
	}
	out := make(map[string]*torch.Tensor, 2*len(names))
	for i, n := range names {
		out["exp_avg."+n] = o.m[i]
		out["exp_avg_sq."+n] = o.v[i]
	}
	return out, map[string]string{"step": strconv.FormatInt(o.step, 10)}, nil
}

// LoadState copies moments and the step count saved by StateTensors.
func (o *AdamW) LoadState(names []string, tensors map[string]*torch.Tensor, meta map[string]string) error {
	if len(names) != len(o.params) {
		return fmt.Errorf("adamw state: %d names for %d parameters", len(names), len(o.params))
	}
	step, err := strconv.ParseInt(meta["step"], 10, 64)
	if err != nil {
		return fmt.Errorf("adamw state: bad step %q", meta["step"])
	}
	for i, n := range names {
		for _, pair := range []struct {
			key string
			dst *torch.Tensor
		}{{"exp_avg." + n, o.m[i]}, {"exp_avg_sq." + n, o.v[i]}} {
			src := tensors[pair.key]
			if src == nil {
				return fmt.Errorf("adamw state: %s missing", pair.key)
			}
			if !slices.Equal(src.Shape(), pair.dst.Shape()) {
				return fmt.Errorf("adamw state: %s has shape %v, parameter has %v", pair.key, src.Shape(), pair.dst.Shape())
			}
			if err := pair.dst.CopyFrom(src); err != nil {
				return fmt.Errorf("adamw state: %s: %w", pair.key, err)
			}
		}
	}
	o.step = step
	return nil
}

// Schedule is a learning-rate schedule: linear warmup to Peak over Warmup steps, then a
// decay to Peak*MinRatio at step Total, cosine or linear, or constant.
type Schedule struct {
	Peak     float64
	Warmup   int
	Total    int
	MinRatio float64
	Kind     string // "cosine" (default), "linear" or "constant"
}

// LR is the learning rate for 1-based step.
func (s Schedule) LR(step int) float64 {
	if s.Warmup > 0 && step <= s.Warmup {
		return s.Peak * float64(step) / float64(s.Warmup)
	}
	if s.Kind == "constant" || s.Total <= s.Warmup {
		return s.Peak
	}
	frac := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	frac = math.Min(math.Max(frac, 0), 1)
	floor := s.Peak * s.MinRatio
	if s.Kind == "linear" {
		return s.Peak - (s.Peak-floor)*frac
	}
	return floor + (s.Peak-floor)*0.5*(1+math.Cos(math.Pi*frac))
}

// Validate checks the schedule's fields.
func (s Schedule) Validate() error {
	switch {
	case s.Peak <= 0 || math.IsNaN(s.Peak) || math.IsInf(s.Peak, 0):
		return fmt.Errorf("learning rate must be positive and finite, got %v", s.Peak)
	case s.Warmup < 0:
		return fmt.Errorf("warmup steps must be >= 0, got %d", s.Warmup)
	case s.MinRatio < 0 || s.MinRatio > 1:
		return fmt.Errorf("min lr ratio must be in [0, 1], got %v", s.MinRatio)
	}
	switch s.Kind {
	case "", "cosine", "linear", "constant":
		return nil
	}
	return fmt.Errorf("unknown schedule %q (want cosine, linear or constant)", s.Kind)
}
