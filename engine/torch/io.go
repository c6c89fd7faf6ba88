package torch

import (
	"fmt"
	"slices"
	"sort"

	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
)

var toSafetensors = map[DType]safetensors.DType{
	Float32: safetensors.F32, Float16: safetensors.F16, BFloat16: safetensors.BF16, Float64: safetensors.F64,
	Int64: safetensors.I64, Int32: safetensors.I32, Int16: safetensors.I16, Int8: safetensors.I8,
	Uint8: safetensors.U8, Bool: safetensors.Bool,
}

// DTypeFromSafetensors maps a safetensors dtype name to a DType.
func DTypeFromSafetensors(d safetensors.DType) (DType, error) {
	for k, v := range toSafetensors {
		if v == d {
			return k, nil
		}
	}
	return 0, fmt.Errorf("torch: safetensors dtype %s is not supported", d)
}

// Save writes named tensors (any device) to a safetensors file, atomically: the file at
// path is either the old one or the complete new one.
func Save(path string, tensors map[string]*Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]safetensors.Tensor, 0, len(names))
	for _, n := range names {
		t := tensors[n]
		in, err := t.Info()
		if err != nil {
			return fmt.Errorf("torch: save %s: tensor %q: %w", path, n, err)
		}
		sd, ok := toSafetensors[in.DType]
		if !ok {
			return fmt.Errorf("torch: save %s: tensor %q has unsupported dtype %v", path, n, in.DType)
		}
		data, err := t.Bytes()
		if err != nil {
			return fmt.Errorf("torch: save %s: tensor %q: %w", path, n, err)
		}
		out = append(out, safetensors.Tensor{Name: n, DType: sd, Shape: in.Shape, Data: data})
	}
	return safetensors.Write(path, out, metadata)
}

// Load reads every tensor of a safetensors file into s on dev, keeping the file's dtypes.
// The file is memory-mapped; each tensor's bytes are copied once, into libtorch memory.
func (s *Scope) Load(path string, dev Device) (map[string]*Tensor, map[string]string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := make(map[string]*Tensor, len(f.Names()))
	for _, name := range f.Names() {
		info, data, err := f.Tensor(name)
		if err != nil {
			return nil, nil, err
		}
		dt, err := DTypeFromSafetensors(info.DType)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		t := s.FromBytes(data, info.Shape, dt, dev)
		if err := s.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		out[name] = t
	}
	return out, f.Header().Metadata, nil
}

// LoadInto copies the tensors of a safetensors file into params, matched by names (one
// name per parameter, in order): each must be in the file with the parameter's shape.
// Nothing records gradients while it copies.
func LoadInto(path string, names []string, params []*Tensor) error {
	if len(names) != len(params) {
		return fmt.Errorf("torch: load %s: %d names for %d parameters", path, len(names), len(params))
	}
	s := NewScope()
	defer s.Close()
	weights, _, err := s.Load(path, CPU)
	if err != nil {
		return err
	}
	return NoGrad(func() error {
		for i, n := range names {
			w := weights[n]
			if w == nil {
				return fmt.Errorf("%s: weight %s missing", path, n)
			}
			if ws, ps := w.Shape(), params[i].Shape(); !slices.Equal(ws, ps) {
				return fmt.Errorf("%s: weight %s has shape %v, the parameter %v", path, n, ws, ps)
			}
			if err := params[i].CopyFrom(w); err != nil {
				return fmt.Errorf("%s: weight %s: %w", path, n, err)
			}
		}
		return nil
	})
}
