package model

import (
	"github.com/pioneer-ai/pioneer/engine/torch"
)

// Linear is one projection of a model: y = x·Wᵀ + b for nn.Linear (W is (out, in)), or
// y = x·W + b for GPT-2's Conv1D (W is (in, out)). An Adapter, when set, adds its own
// term to the output; the lora package attaches them.
type Linear struct {
	W, B    *torch.Tensor // B may be nil
	Conv1D  bool
	Adapter Adapter
}

// Adapter is an extra term added to a Linear's output.
type Adapter interface {
	// Delta returns the term for input x (…, in), shaped like the output (…, out).
	Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor
}

// Forward applies the projection and its adapter.
func (l *Linear) Forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	var y *torch.Tensor
	if l.Conv1D {
		y = s.Matmul(x, l.W)
		if l.B != nil {
			y = s.Add(y, l.B)
		}
	} else {
		y = s.Linear(x, l.W, l.B)
	}
	switch a := l.Adapter.(type) {
	case nil:
	case fusedAdapter:
		y = a.AddTo(s, x, y)
	default:
		y = s.Add(y, a.Delta(s, x))
	}
	return y
}

// fusedAdapter is an optional capability of an Adapter: adding its term to the output y
// itself, so it can fold the addition into its last matrix product.
type fusedAdapter interface {
	AddTo(s *torch.Scope, x, y *torch.Tensor) *torch.Tensor
}

// Dims returns the input and output sizes.
func (l *Linear) Dims() (in, out int64) {
	sh := l.W.Shape()
	if len(sh) != 2 {
		return 0, 0
	}
	if l.Conv1D {
		return sh[0], sh[1]
	}
	return sh[1], sh[0]
}
