package model

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// quantizable is what Quantize needs of an architecture besides CausalLM: its output
// projection and the scope that owns its weights (the quantized copies live and die with
// them).
type quantizable interface {
	OutputProjection() *Linear
	WeightScope() *torch.Scope
}

// grouped architectures run some projections as groups (Group): their quantized weights
// are the group's.
type grouped interface {
	ProjectionGroups() []*Group
}

// QuantizeSummary says what Quantize did.
type QuantizeSummary struct {
	Bits8, Bits4 int   // projections given 8-bit and 4-bit weights, the output projection included
	Skipped      int   // projections left in float32 (rows not a multiple of 32 long)
	Bytes        int64 // the quantized copies' size: levels, scales and offsets
}

// Quantize gives every projection of m whose rows are a multiple of 32 long, and its
// output projection, a quantized copy of its weight (one for each Group of projections
// the architecture runs together): torch.Quantize's blocks of 32 with a scale and offset
// each, in 4 bits where that holds the weight exactly, as it does a Q4_1 GGUF file's,
// otherwise 8. Decoding on the CPU then multiplies by the copies (Linear.Forward,
// Group.Forward). The float32 weights stay: prefill, scoring and training use them.
// The copies are made from the weights as they are now; a model whose weights change
// afterwards (training, a swap) must be given new ones, which Quantize called again
// makes. Only float32 models on the CPU take quantized weights.
func Quantize(m CausalLM) (QuantizeSummary, error) {
	var sum QuantizeSummary
	qm, ok := m.(quantizable)
	if !ok {
		return sum, fmt.Errorf("quantized weights: %s does not support them", m.Info().Architecture)
	}
	if dev := m.Device(); dev.Type != torch.DeviceCPU {
		return sum, fmt.Errorf("quantized weights are for decoding on the CPU; the model is on %v", dev)
	}
	if m.DType() != torch.Float32 {
		return sum, fmt.Errorf("quantized weights are made from float32 weights; the model is %v", m.DType())
	}
	owner := qm.WeightScope()
	inGroup := map[*Linear]bool{}
	if gm, ok := m.(grouped); ok {
		for _, g := range gm.ProjectionGroups() {
			bits, ok := g.quantize(owner)
			if err := owner.Err(); err != nil {
				return sum, fmt.Errorf("quantized weights: %w", err)
			}
			if !ok {
				continue
			}
			for _, p := range g.Parts {
				inGroup[p] = true
				p.dropQuantized()
				if bits == 4 {
					sum.Bits4++
				} else {
					sum.Bits8++
				}
			}
			sum.Bytes += g.quantized.Bytes()
		}
	}
	linears := []*Linear{qm.OutputProjection()}
	for _, name := range slices.Sorted(maps.Keys(m.Linears())) {
		if l := m.Linears()[name]; !inGroup[l] {
			linears = append(linears, l)
		}
	}
	for _, l := range linears {
		w := l.W
		if l.Conv1D {
			w = owner.Transpose(w, 0, 1)
		}
		sh := w.Shape()
		if len(sh) != 2 || sh[1]%32 != 0 {
			sum.Skipped++
			continue
		}
		q := owner.Quantize(w)
		if l.Conv1D {
			w.Free()
		}
		if err := owner.Err(); err != nil {
			return sum, fmt.Errorf("quantized weights: %w", err)
		}
		l.dropQuantized() // a second call: the old copy goes
		l.Quantized = q
		if q.Bits == 4 {
			sum.Bits4++
		} else {
			sum.Bits8++
		}
		sum.Bytes += q.Bytes()
	}
	return sum, nil
}

// dropQuantized frees l's quantized copy, if any.
func (l *Linear) dropQuantized() {
	if l.Quantized != nil {
		l.Quantized.Free()
		l.Quantized = nil
	}
}
