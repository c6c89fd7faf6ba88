package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Tensor is a handle to a libtorch tensor, owned by one Scope until freed.
type Tensor struct {
	h     C.pt_tensor
	owner *Scope
}

// Scope owns tensors and frees them all on Close. Operations called on a Scope put their
// results in it. The first error of any operation is kept (Err); after it, operations
// return nil without running.
type Scope struct {
	tensors []*Tensor
	err     error
	closed  bool
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// Close frees every tensor the scope still owns. It is safe to call twice.
func (s *Scope) Close() {
	if s == nil || s.closed {
		return
	}
	for _, t := range s.tensors {
		if t.owner == s && t.h != nil {
			C.pt_free(t.h)
			t.h = nil
		}
	}
	s.tensors = nil
	s.closed = true
}

// Err is the first error recorded by an operation on this scope.
func (s *Scope) Err() error { return s.err }

// FirstErr is the first error recorded on any of the scopes, in order.
func FirstErr(scopes ...*Scope) error {
	for _, s := range scopes {
		if err := s.Err(); err != nil {
			return err
		}
	}
	return nil
}

// ResetErr clears the recorded error and returns it.
func (s *Scope) ResetErr() error {
	err := s.err
	s.err = nil
	return err
}

// Len is the number of tensors the scope owns.
func (s *Scope) Len() int {
	n := 0
	for _, t := range s.tensors {
		if t.owner == s && t.h != nil {
			n++
		}
	}
	return n
}

// Fail records err as the scope's error, unless one is already recorded, so code built
// on the binding can stop a chain of operations with its own error.
func (s *Scope) Fail(err error) {
	if err != nil {
		s.fail(err)
	}
}

// fail records err (the first one wins) and returns nil for the caller to return.
func (s *Scope) fail(err error) *Tensor {
	if s.err == nil {
		s.err = err
	}
	return nil
}

// failf records a binding-level error for op.
func (s *Scope) failf(op, format string, args ...any) *Tensor {
	return s.fail(&Error{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// ok reports whether the operation op may run on the given inputs; when it may not it
// records why.
func (s *Scope) ok(op string, in ...*Tensor) bool {
	if s.err != nil {
		return false
	}
	if s.closed {
		s.fail(fmt.Errorf("torch: %s: %w", op, ErrClosed))
		return false
	}
	for i, t := range in {
		if t == nil {
			s.failf(op, "input %d is nil (a failed operation's result?)", i)
			return false
		}
		if t.h == nil {
			s.fail(fmt.Errorf("torch: %s: input %d: %w", op, i, ErrClosed))
			return false
		}
	}
	return true
}

// adopt wraps a new handle into a tensor owned by s.
func (s *Scope) adopt(h C.pt_tensor) *Tensor {
	t := &Tensor{h: h, owner: s}
	s.tensors = append(s.tensors, t)
	return t
}

// result adopts h on success or records the error.
func (s *Scope) result(op string, e C.pt_err, h C.pt_tensor) *Tensor {
	if err := check(op, e); err != nil {
		return s.fail(err)
	}
	return s.adopt(h)
}

// MoveTo transfers ownership of t to dst; t is then freed when dst closes.
func (t *Tensor) MoveTo(dst *Scope) *Tensor {
	if t == nil || t.h == nil || dst == nil || dst.closed || t.owner == dst {
		return t
	}
	t.owner = dst
	dst.tensors = append(dst.tensors, t)
	return t
}

// Free releases the tensor now instead of when its scope closes.
func (t *Tensor) Free() {
	if t == nil || t.h == nil {
		return
	}
	C.pt_free(t.h)
	t.h = nil
}

// Closed reports whether the tensor was freed.
func (t *Tensor) Closed() bool { return t == nil || t.h == nil }

// Info is a tensor's metadata.
type Info struct {
	Shape        []int64
	DType        DType
	Device       Device
	RequiresGrad bool
}

// Info returns the tensor's shape, dtype, device and gradient flag.
func (t *Tensor) Info() (Info, error) {
	if t == nil || t.h == nil {
		return Info{}, ErrClosed
	}
	var ci C.pt_tensor_info
	if err := check("info", C.pt_info(t.h, &ci)); err != nil {
		return Info{}, err
	}
	shape := make([]int64, int(ci.dim))
	for i := range shape {
		shape[i] = int64(ci.sizes[i])
	}
	dev := Device{Type: DeviceType(ci.device_type), Index: int(ci.device_index)}
	if dev.Type == DeviceCUDA && dev.Index < 0 {
		dev.Index = 0
	}
	if dev.Type == DeviceCPU {
		dev.Index = 0
	}
	return Info{Shape: shape, DType: DType(ci.dtype), Device: dev, RequiresGrad: ci.requires_grad != 0}, nil
}

// Shape is the tensor's shape, or nil for a closed tensor.
func (t *Tensor) Shape() []int64 {
	in, err := t.Info()
	if err != nil {
		return nil
	}
	return in.Shape
}

// DType is the tensor's element type (-1 for a closed tensor).
func (t *Tensor) DType() DType {
	in, err := t.Info()
	if err != nil {
		return -1
	}
	return in.DType
}

// Device is the device that holds the tensor.
func (t *Tensor) Device() Device {
	in, _ := t.Info()
	return in.Device
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape() {
		n *= d
	}
	return n
}

func (t *Tensor) String() string {
	in, err := t.Info()
	if err != nil {
		return "Tensor(closed)"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", in.Shape, in.DType, in.Device)
}

// Item returns the value of a one-element tensor as float64.
func (t *Tensor) Item() (float64, error) {
	if t == nil || t.h == nil {
		return 0, ErrClosed
	}
	var v C.double
	if err := check("item", C.pt_item(t.h, &v)); err != nil {
		return 0, err
	}
	return float64(v), nil
}

// copyOut copies the tensor's elements into dst, which must hold numel*size bytes of the
// tensor's own dtype.
func (t *Tensor) copyOut(want DType, dst unsafe.Pointer, nbytes int) error {
	in, err := t.Info()
	if err != nil {
		return err
	}
	if in.DType != want {
		return &Error{Op: "copy out", Msg: fmt.Sprintf("tensor is %v, asked for %v", in.DType, want)}
	}
	return check("copy out", C.pt_copy_out(t.h, dst, C.int64_t(nbytes)))
}

// Float32s copies a float32 tensor's elements (row-major) to a new slice.
func (t *Tensor) Float32s() ([]float32, error) {
	out := make([]float32, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, t.copyOut(Float32, p, 4*len(out))
}

// Float64s copies a float64 tensor's elements to a new slice.
func (t *Tensor) Float64s() ([]float64, error) {
	out := make([]float64, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, t.copyOut(Float64, p, 8*len(out))
}

// Int64s copies an int64 tensor's elements to a new slice.
func (t *Tensor) Int64s() ([]int64, error) {
	out := make([]int64, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, t.copyOut(Int64, p, 8*len(out))
}

// Bools copies a bool tensor's elements to a new slice.
func (t *Tensor) Bools() ([]bool, error) {
	out := make([]bool, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, t.copyOut(Bool, p, len(out))
}

// Bytes copies the raw bytes of the tensor's elements (its own dtype, row-major).
func (t *Tensor) Bytes() ([]byte, error) {
	in, err := t.Info()
	if err != nil {
		return nil, err
	}
	n := int64(in.DType.Size())
	for _, d := range in.Shape {
		n *= d
	}
	out := make([]byte, n)
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, check("copy out", C.pt_copy_out(t.h, p, C.int64_t(n)))
}

// ---- creation -----------------------------------------------------------------------

func shapePtr(shape []int64) *C.int64_t {
	if len(shape) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&shape[0]))
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// FromBytes creates a tensor of dtype and shape on dev by copying raw element bytes.
func (s *Scope) FromBytes(data []byte, shape []int64, dtype DType, dev Device) *Tensor {
	if !s.ok("from bytes") {
		return nil
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var h C.pt_tensor
	e := C.pt_from_copy(p, C.int64_t(len(data)), shapePtr(shape), C.int(len(shape)), C.int32_t(dtype),
		C.int32_t(dev.Type), C.int32_t(dev.Index), &h)
	return s.result("from bytes", e, h)
}

// fromSlice copies n elements of size elem starting at p.
func (s *Scope) fromSlice(op string, p unsafe.Pointer, n int, elem int, shape []int64, dtype DType, dev Device) *Tensor {
	if !s.ok(op) {
		return nil
	}
	if numel(shape) != int64(n) {
		return s.failf(op, "%d values do not fill shape %v (%d elements)", n, shape, numel(shape))
	}
	var h C.pt_tensor
	e := C.pt_from_copy(p, C.int64_t(n*elem), shapePtr(shape), C.int(len(shape)), C.int32_t(dtype),
		C.int32_t(dev.Type), C.int32_t(dev.Index), &h)
	return s.result(op, e, h)
}

func firstPtr[T any](v []T) unsafe.Pointer {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Pointer(&v[0])
}

// Float32s copies values into a new float32 tensor of the given shape on dev.
func (s *Scope) Float32s(values []float32, shape []int64, dev Device) *Tensor {
	return s.fromSlice("from float32s", firstPtr(values), len(values), 4, shape, Float32, dev)
}

// Float64s copies values into a new float64 tensor.
func (s *Scope) Float64s(values []float64, shape []int64, dev Device) *Tensor {
	return s.fromSlice("from float64s", firstPtr(values), len(values), 8, shape, Float64, dev)
}

// Int64s copies values into a new int64 tensor.
func (s *Scope) Int64s(values []int64, shape []int64, dev Device) *Tensor {
	return s.fromSlice("from int64s", firstPtr(values), len(values), 8, shape, Int64, dev)
}

// Bools copies values into a new bool tensor.
func (s *Scope) Bools(values []bool, shape []int64, dev Device) *Tensor {
	return s.fromSlice("from bools", firstPtr(values), len(values), 1, shape, Bool, dev)
}

// Scalar is a 0-dimensional tensor holding v.
func (s *Scope) Scalar(v float64, dtype DType, dev Device) *Tensor {
	return s.Full(nil, v, dtype, dev)
}

// blobs keeps Go memory that from_blob tensors alias pinned until libtorch releases it.
var blobs = struct {
	sync.Mutex
	next int64
	pins map[int64]*runtime.Pinner
}{pins: map[int64]*runtime.Pinner{}}

//export pioneerReleaseBlob
func pioneerReleaseBlob(id C.int64_t) {
	blobs.Lock()
	p := blobs.pins[int64(id)]
	delete(blobs.pins, int64(id))
	blobs.Unlock()
	if p != nil {
		p.Unpin()
	}
}

// LiveBlobs is the number of Go buffers currently aliased by tensors.
func LiveBlobs() int {
	blobs.Lock()
	defer blobs.Unlock()
	return len(blobs.pins)
}

// FromBlobFloat32 creates a CPU float32 tensor that aliases values without copying. The
// slice stays pinned (and must not be resized) until every tensor and view sharing its
// storage is freed; writes through either side are visible to the other.
func (s *Scope) FromBlobFloat32(values []float32, shape []int64) *Tensor {
	const op = "from blob"
	if !s.ok(op) {
		return nil
	}
	if len(values) == 0 {
		return s.failf(op, "empty slice")
	}
	if numel(shape) != int64(len(values)) {
		return s.failf(op, "%d values do not fill shape %v", len(values), shape)
	}
	pin := &runtime.Pinner{}
	pin.Pin(&values[0])
	blobs.Lock()
	blobs.next++
	id := blobs.next
	blobs.pins[id] = pin
	blobs.Unlock()
	var h C.pt_tensor
	e := C.pt_from_blob(unsafe.Pointer(&values[0]), shapePtr(shape), C.int(len(shape)), C.int32_t(Float32), C.int64_t(id), &h)
	if err := check(op, e); err != nil {
		pioneerReleaseBlob(C.int64_t(id))
		return s.fail(err)
	}
	return s.adopt(h)
}

// Full is a tensor of the given shape filled with value.
func (s *Scope) Full(shape []int64, value float64, dtype DType, dev Device) *Tensor {
	if !s.ok("full") {
		return nil
	}
	var h C.pt_tensor
	e := C.pt_full(shapePtr(shape), C.int(len(shape)), C.double(value), C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index), &h)
	return s.result("full", e, h)
}

// Zeros is a tensor of zeros.
func (s *Scope) Zeros(shape []int64, dtype DType, dev Device) *Tensor {
	return s.Full(shape, 0, dtype, dev)
}

// Ones is a tensor of ones.
func (s *Scope) Ones(shape []int64, dtype DType, dev Device) *Tensor {
	return s.Full(shape, 1, dtype, dev)
}

// Arange is [start, end) in steps of step.
func (s *Scope) Arange(start, end, step float64, dtype DType, dev Device) *Tensor {
	if !s.ok("arange") {
		return nil
	}
	var h C.pt_tensor
	e := C.pt_arange(C.double(start), C.double(end), C.double(step), C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index), &h)
	return s.result("arange", e, h)
}

// Generator is a seeded random-number generator for one device. Close it when done.
type Generator struct {
	g      C.pt_generator
	device Device
}

// NewGenerator returns a generator for dev seeded with seed.
func NewGenerator(seed uint64, dev Device) (*Generator, error) {
	var g C.pt_generator
	if err := check("generator", C.pt_generator_new(C.uint64_t(seed), C.int32_t(dev.Type), C.int32_t(dev.Index), &g)); err != nil {
		return nil, err
	}
	return &Generator{g: g, device: dev}, nil
}

// Close frees the generator.
func (g *Generator) Close() {
	if g != nil && g.g != nil {
		C.pt_generator_free(g.g)
		g.g = nil
	}
}

// Device is the device the generator serves.
func (g *Generator) Device() Device { return g.device }

// State returns the generator's state as a byte tensor in s.
func (g *Generator) State(s *Scope) *Tensor {
	if !s.ok("generator state") {
		return nil
	}
	if g == nil || g.g == nil {
		return s.fail(fmt.Errorf("torch: generator state: %w", ErrClosed))
	}
	var h C.pt_tensor
	return s.result("generator state", C.pt_generator_get_state(g.g, &h), h)
}

// SetState restores a state returned by State.
func (g *Generator) SetState(state *Tensor) error {
	if g == nil || g.g == nil || state == nil || state.h == nil {
		return ErrClosed
	}
	return check("generator set state", C.pt_generator_set_state(g.g, state.h))
}

func genHandle(g *Generator) C.pt_generator {
	if g == nil {
		return nil
	}
	return g.g
}

// Randn is a tensor of standard normal samples drawn from g (nil: the default generator).
func (s *Scope) Randn(shape []int64, dtype DType, dev Device, g *Generator) *Tensor {
	if !s.ok("randn") {
		return nil
	}
	if g != nil && g.g == nil {
		return s.fail(fmt.Errorf("torch: randn: generator: %w", ErrClosed))
	}
	var h C.pt_tensor
	e := C.pt_randn(shapePtr(shape), C.int(len(shape)), C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index), genHandle(g), &h)
	return s.result("randn", e, h)
}

// Rand is a tensor of uniform samples in [0, 1) drawn from g (nil: the default generator).
func (s *Scope) Rand(shape []int64, dtype DType, dev Device, g *Generator) *Tensor {
	if !s.ok("rand") {
		return nil
	}
	if g != nil && g.g == nil {
		return s.fail(fmt.Errorf("torch: rand: generator: %w", ErrClosed))
	}
	var h C.pt_tensor
	e := C.pt_rand(shapePtr(shape), C.int(len(shape)), C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index), genHandle(g), &h)
	return s.result("rand", e, h)
}

// To converts t to dtype on dev (a copy unless nothing changes).
func (s *Scope) To(t *Tensor, dtype DType, dev Device) *Tensor {
	if !s.ok("to", t) {
		return nil
	}
	var h C.pt_tensor
	return s.result("to", C.pt_to(t.h, C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index), &h), h)
}
