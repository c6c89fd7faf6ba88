package model

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
)

// Weights is the parameter store the architectures share: tensors by Hugging Face name,
// on one device and dtype, owned by one scope.
type Weights struct {
	Scope  *torch.Scope // owns every weight
	named  map[string]*torch.Tensor
	names  []string // sorted, rebuilt by Set
	device torch.Device
	dtype  torch.DType
}

// NewWeights returns an empty store for weights on dev in dtype.
func NewWeights(dev torch.Device, dtype torch.DType) *Weights {
	return &Weights{Scope: torch.NewScope(), named: map[string]*torch.Tensor{}, device: dev, dtype: dtype}
}

// Set stores t under name.
func (w *Weights) Set(name string, t *torch.Tensor) {
	if _, ok := w.named[name]; !ok {
		w.names = nil
	}
	w.named[name] = t
}

// Named returns the weight with that name, or nil.
func (w *Weights) Named(name string) *torch.Tensor { return w.named[name] }

// Names lists the weight names in sorted order.
func (w *Weights) Names() []string {
	if w.names == nil {
		w.names = slices.Sorted(maps.Keys(w.named))
	}
	return slices.Clone(w.names)
}

// Parameters returns the weights in the order of Names.
func (w *Weights) Parameters() []*torch.Tensor {
	names := w.Names()
	out := make([]*torch.Tensor, len(names))
	for i, n := range names {
		out[i] = w.named[n]
	}
	return out
}

// WeightScope is the scope that owns the weights.
func (w *Weights) WeightScope() *torch.Scope { return w.Scope }

// Tensors returns the name -> weight map (shared; do not modify).
func (w *Weights) Tensors() map[string]*torch.Tensor { return w.named }

// Device is where the weights live.
func (w *Weights) Device() torch.Device { return w.device }

// DType is the weights' element type.
func (w *Weights) DType() torch.DType { return w.dtype }

// Close frees the weights.
func (w *Weights) Close() { w.Scope.Close() }

// Missing lists the names of want that are not stored, sorted.
func (w *Weights) Missing(want map[string][]int64) []string {
	var out []string
	for name := range want {
		if w.named[name] == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// InitRandom creates the weights of shapes as Hugging Face initialises them: names ending
// in ".bias" zero, other vectors (norm weights) one, matrices N(0, std²) drawn in float32
// on the CPU from a generator seeded by seed, so a seed gives the same weights on every
// device.
func (w *Weights) InitRandom(shapes map[string][]int64, std float64, seed uint64) error {
	g, err := torch.NewGenerator(seed, torch.CPU)
	if err != nil {
		return err
	}
	defer g.Close()
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		sh := shapes[name]
		tmp := torch.NewScope() // one weight's CPU copies at a time
		var t *torch.Tensor
		switch {
		case strings.HasSuffix(name, ".bias"):
			t = w.Scope.Zeros(sh, w.dtype, w.device)
		case len(sh) == 1:
			t = w.Scope.Ones(sh, w.dtype, w.device)
		default:
			t = w.Scope.To(tmp.MulScalar(tmp.Randn(sh, torch.Float32, torch.CPU, g), std), w.dtype, w.device)
		}
		err := torch.FirstErr(tmp, w.Scope)
		tmp.Close()
		if err != nil {
			return fmt.Errorf("init %s: %w", name, err)
		}
		w.Set(name, t)
	}
	return nil
}

// LoadFile reads the tensors of one safetensors (or GGUF: by the .gguf name) file that want names, converting them to
// the store's dtype and device; the file is memory-mapped and each tensor copied once into
// libtorch, one at a time. key maps a name in the file to the name in want; skip reports
// tensors to pass over (buffers, a tied head). Any other name, or a shape other than
// want's, is an error naming the file.
func (w *Weights) LoadFile(path string, want map[string][]int64, key func(string) string, skip func(string) bool) error {
	if filepath.Ext(path) == ".gguf" {
		return w.loadGGUF(path, want, key, skip)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, name := range f.Names() {
		info, data, err := f.Tensor(name)
		if err != nil {
			return err
		}
		k := key(name)
		sh, ok := want[k]
		if !ok {
			if skip(name) {
				continue
			}
			return fmt.Errorf("%s: unexpected weight %q for this config", path, name)
		}
		if !slices.Equal(info.Shape, sh) {
			return fmt.Errorf("%s: weight %q has shape %v, config implies %v", path, name, info.Shape, sh)
		}
		dt, err := torch.DTypeFromSafetensors(info.DType)
		if err != nil {
			return fmt.Errorf("%s: weight %q: %w", path, name, err)
		}
		if err := w.store(k, data, info.Shape, dt); err != nil {
			return fmt.Errorf("%s: weight %q: %w", path, name, err)
		}
	}
	return nil
}

// store copies raw elements of dtype dt and shape into the store's dtype and device,
// under name.
func (w *Weights) store(name string, data []byte, shape []int64, dt torch.DType) error {
	tmp := torch.NewScope()
	defer tmp.Close()
	t := w.Scope.To(tmp.FromBytes(data, shape, dt, torch.CPU), w.dtype, w.device)
	if err := torch.FirstErr(tmp, w.Scope); err != nil {
		return err
	}
	w.Set(name, t)
	return nil
}
