package torch

/*
#include "shim.h"
*/
import "C"

// ---- shape --------------------------------------------------------------------------

// Reshape returns a with a new shape (a view when possible); one dimension may be -1.
func (s *Scope) Reshape(a *Tensor, shape ...int64) *Tensor {
	if !s.ok("reshape", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("reshape", C.pt_reshape(a.h, shapePtr(shape), C.int(len(shape)), &h), h)
}

// Expand broadcasts a to shape without copying (-1 keeps a dimension).
func (s *Scope) Expand(a *Tensor, shape ...int64) *Tensor {
	if !s.ok("expand", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("expand", C.pt_expand(a.h, shapePtr(shape), C.int(len(shape)), &h), h)
}

// Permute reorders dimensions.
func (s *Scope) Permute(a *Tensor, dims ...int64) *Tensor {
	if !s.ok("permute", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("permute", C.pt_permute(a.h, shapePtr(dims), C.int(len(dims)), &h), h)
}

// Transpose swaps two dimensions.
func (s *Scope) Transpose(a *Tensor, d0, d1 int64) *Tensor {
	if !s.ok("transpose", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("transpose", C.pt_transpose(a.h, C.int64_t(d0), C.int64_t(d1), &h), h)
}

// Slice is a[start:end:step] along dim (a view).
func (s *Scope) Slice(a *Tensor, dim, start, end, step int64) *Tensor {
	if !s.ok("slice", a) {
		return nil
	}
	if step <= 0 {
		return s.failf("slice", "step must be positive, got %d", step)
	}
	var h C.pt_tensor
	return s.result("slice", C.pt_slice(a.h, C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), &h), h)
}

// Select picks one index along dim, removing that dimension.
func (s *Scope) Select(a *Tensor, dim, index int64) *Tensor {
	if !s.ok("select", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("select", C.pt_select(a.h, C.int64_t(dim), C.int64_t(index), &h), h)
}

// Unsqueeze inserts a dimension of size 1 at dim.
func (s *Scope) Unsqueeze(a *Tensor, dim int64) *Tensor {
	if !s.ok("unsqueeze", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("unsqueeze", C.pt_unsqueeze(a.h, C.int64_t(dim), &h), h)
}

// Squeeze removes dimension dim if it has size 1.
func (s *Scope) Squeeze(a *Tensor, dim int64) *Tensor {
	if !s.ok("squeeze", a) {
		return nil
	}
	var h C.pt_tensor
	return s.result("squeeze", C.pt_squeeze(a.h, C.int64_t(dim), &h), h)
}

func (s *Scope) handles(name string, ts []*Tensor) ([]C.pt_tensor, bool) {
	if !s.ok(name, ts...) {
		return nil, false
	}
	if len(ts) == 0 {
		s.failf(name, "no tensors")
		return nil, false
	}
	hs := make([]C.pt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs, true
}

// Cat concatenates tensors along dim.
func (s *Scope) Cat(ts []*Tensor, dim int64) *Tensor {
	hs, ok := s.handles("cat", ts)
	if !ok {
		return nil
	}
	var h C.pt_tensor
	return s.result("cat", C.pt_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), &h), h)
}

// Stack joins tensors of one shape along a new dimension dim.
func (s *Scope) Stack(ts []*Tensor, dim int64) *Tensor {
	hs, ok := s.handles("stack", ts)
	if !ok {
		return nil
	}
	var h C.pt_tensor
	return s.result("stack", C.pt_stack(&hs[0], C.int(len(hs)), C.int64_t(dim), &h), h)
}

// IndexSelect picks the entries of a along dim listed in index (int64, 1-D).
func (s *Scope) IndexSelect(a *Tensor, dim int64, index *Tensor) *Tensor {
	if !s.ok("index_select", a, index) {
		return nil
	}
	var h C.pt_tensor
	return s.result("index_select", C.pt_index_select(a.h, C.int64_t(dim), index.h, &h), h)
}

// IndexAdd is a copy of a with source's slices along dim added at the positions index
// (int64, 1-D) lists: out[index[i]] += source[i] for dim 0. Gradients flow to a and
// source.
func (s *Scope) IndexAdd(a *Tensor, dim int64, index, source *Tensor) *Tensor {
	if !s.ok("index_add", a, index, source) {
		return nil
	}
	var h C.pt_tensor
	return s.result("index_add", C.pt_index_add(a.h, C.int64_t(dim), index.h, source.h, &h), h)
}

// Gather is out[i][j] = a[i][index[i][j]] for dim 1, and likewise for other dims.
func (s *Scope) Gather(a *Tensor, dim int64, index *Tensor) *Tensor {
	if !s.ok("gather", a, index) {
		return nil
	}
	var h C.pt_tensor
	return s.result("gather", C.pt_gather(a.h, C.int64_t(dim), index.h, &h), h)
}
