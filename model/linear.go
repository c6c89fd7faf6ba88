package model

import (
	"github.com/pioneer-ai/pioneer/engine/torch"
)

// Linear is one projection of a model: y = x·Wᵀ + b for nn.Linear (W is (out, in)), or
// y = x·W + b for GPT-2's Conv1D (W is (in, out)). An Adapter, when set, adds its own
// term to the output; the lora package attaches them. Quantized, when set (Quantize),
// holds W in 8 or 4 bits for decoding: a few rows of float32 input on the CPU, under
// torch.NoGrad, are multiplied by it instead of W (training, and anything else that
// records gradients, uses W).
type Linear struct {
	W, B      *torch.Tensor // B may be nil
	Conv1D    bool
	Adapter   Adapter
	Quantized *torch.QuantizedWeight // (out, in) whatever Conv1D says
}

// QuantizedMaxRows is the most rows of input (the product of x's leading sizes) a Linear
// with Quantized weights multiplies by them: decoding up to this many sequences at a
// time. Longer inputs (a prompt's prefill, scoring) use W, where the product is bound by
// arithmetic and the float32 GEMM is faster (at 16 rows the two ran level on SmolLM2).
const QuantizedMaxRows = 16

// Adapter is an extra term added to a Linear's output.
type Adapter interface {
	// Delta returns the term for input x (…, in), shaped like the output (…, out).
	Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor
}

// Forward applies the projection and its adapter.
func (l *Linear) Forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	var y *torch.Tensor
	if l.Quantized != nil && Decoding(x) {
		y = s.QuantizedLinear(x, l.Quantized, l.B)
	} else if l.Conv1D {
		y = s.Matmul(x, l.W)
		if l.B != nil {
			y = s.Add(y, l.B)
		}
	} else {
		y = s.Linear(x, l.W, l.B)
	}
	return l.addAdapter(s, x, y)
}

// addAdapter adds the adapter's term for input x to the projection's output y.
func (l *Linear) addAdapter(s *torch.Scope, x, y *torch.Tensor) *torch.Tensor {
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

// Decoding reports whether x is the hidden states of a decoding step, which quantized
// weights and the fused decoding step (torch.Scope.DecodeLayers) take: no gradient
// recorded, float32 on the CPU, at most QuantizedMaxRows rows.
func Decoding(x *torch.Tensor) bool {
	if torch.GradEnabled() {
		return false
	}
	in, err := x.Info()
	if err != nil || in.Device.Type != torch.DeviceCPU || in.DType != torch.Float32 || len(in.Shape) == 0 {
		return false
	}
	rows := int64(1)
	for _, d := range in.Shape[:len(in.Shape)-1] {
		rows *= d
	}
	return rows <= QuantizedMaxRows
}

// Decodable returns the projection's weight for a fused decoding step
// (torch.Scope.DecodeLayers): its quantized weight and bias where it has one, and
// otherwise W and B; ok is false where it carries an adapter or is a Conv1D.
func (l *Linear) Decodable() (w torch.DecodeWeight, ok bool) {
	if l.Adapter != nil || l.Conv1D {
		return w, false
	}
	if l.Quantized != nil {
		return torch.DecodeWeight{Quantized: l.Quantized, Bias: l.B}, true
	}
	w.Float = []*torch.Tensor{l.W}
	if l.B != nil {
		w.FloatBias = []*torch.Tensor{l.B}
	}
	return w, true
}
