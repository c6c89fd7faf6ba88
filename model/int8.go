package model

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// int8Model is what UseInt8 needs of an architecture besides CausalLM: its output
// projection and the scope that owns its weights (the int8 copies live and die with them).
type int8Model interface {
	OutputProjection() *Linear
	WeightScope() *torch.Scope
}

// Int8Summary says what UseInt8 did.
type Int8Summary struct {
	Projections int   // projections given int8 weights, the output projection included
	Skipped     int   // projections left in float32 (rows not a multiple of 32 long)
	Bytes       int64 // the int8 copies' size: values, scales and offsets
}

// UseInt8 gives every projection of m whose rows are a multiple of 32 long, and its output
// projection, an int8 copy of its weight (torch.QuantizeInt8: blocks of 32 with a scale
// and offset each), which decoding on the CPU then multiplies by (Linear.Forward). The
// float32 weights stay: prefill, scoring and training use them. The copies are made from
// the weights as they are now; a model whose weights change afterwards (training, a swap)
// must be given new ones, which UseInt8 called again makes. Only float32 models on the
// CPU take int8 weights.
func UseInt8(m CausalLM) (Int8Summary, error) {
	var sum Int8Summary
	im, ok := m.(int8Model)
	if !ok {
		return sum, fmt.Errorf("int8 weights: %s does not support them", m.Info().Architecture)
	}
	if dev := m.Device(); dev.Type != torch.DeviceCPU {
		return sum, fmt.Errorf("int8 weights are for decoding on the CPU; the model is on %v", dev)
	}
	if m.DType() != torch.Float32 {
		return sum, fmt.Errorf("int8 weights are made from float32 weights; the model is %v", m.DType())
	}
	owner := im.WeightScope()
	linears := []*Linear{im.OutputProjection()}
	for _, name := range slices.Sorted(maps.Keys(m.Linears())) {
		linears = append(linears, m.Linears()[name])
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
		q := owner.QuantizeInt8(w)
		if l.Conv1D {
			w.Free()
		}
		if err := owner.Err(); err != nil {
			return sum, fmt.Errorf("int8 weights: %w", err)
		}
		l.Int8 = q
		sum.Projections++
		sum.Bytes += sh[0]*sh[1] + 8*sh[0]*(sh[1]/32)
	}
	return sum, nil
}
