// Package torch is Pioneer's binding to libtorch: a small extern "C" shim (shim.h,
// shim.cpp) over the ATen C++ API and the Go types that wrap it.
//
// Ownership. Every tensor is created under a Scope, which frees it when the Scope closes;
// a tensor that must outlive its scope is moved to another with MoveTo. There are no
// finalizers.
//
// Errors. C++ exceptions come back as *Error values carrying the C++ message. Operations
// on a Scope are chainable: the first failure is recorded on the Scope (Scope.Err), the
// failing operation returns nil, and later operations on that Scope return nil without
// running, so a forward pass is written straight and checked once at the end.
//
// Threads. Gradient mode is per OS thread in libtorch; NoGrad locks the calling goroutine
// to its thread while it runs. libtorch's OpenMP workers form one pool per calling OS
// thread, so a hot loop should run under runtime.LockOSThread: a goroutine that moves
// between threads makes new pools (measured: training steps 20 % slower without the
// lock). A Scope is not safe for concurrent use.
//
// Build. The cgo flags point at third_party/libtorch (scripts/setup.sh makes it: a symlink
// to the cached libtorch, or to $LIBTORCH). The binary links libtorch_cpu and libc10 and
// loads libtorch_cuda.so at start-up when it is present, so one binary serves CPU and GPU
// machines; at run time the libraries are found through the rpath to third_party/libtorch
// or through LD_LIBRARY_PATH. The shim is compiled with -fopenmp: ATen's parallel_for is
// inlined into it, and without OpenMP it would run its loops on one thread instead of on
// libtorch's OpenMP pool (libgomp.so.1, which libtorch_cpu links already).
package torch

/*
#cgo CXXFLAGS: -std=c++17 -O2 -w -fopenmp -D_GLIBCXX_USE_CXX11_ABI=1
#cgo CXXFLAGS: -I${SRCDIR}/../../third_party/libtorch/include
#cgo LDFLAGS: -L${SRCDIR}/../../third_party/libtorch/lib -Wl,-rpath,${SRCDIR}/../../third_party/libtorch/lib
#cgo LDFLAGS: -ltorch_cpu -lc10 -lgomp -ldl -lstdc++
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// DType is a tensor element type; the values are libtorch's ScalarType codes.
type DType int32

// Element types the binding supports.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64",
	Float16: "float16", Float32: "float32", Float64: "float64", Bool: "bool", BFloat16: "bfloat16",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Int16, Float16, BFloat16:
		return 2
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float16 || d == Float32 || d == Float64 || d == BFloat16
}

// ParseDType maps names such as "float32", "bf16" or "bfloat16" to a DType.
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32", "f32", "fp32":
		return Float32, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "float16", "f16", "fp16", "half":
		return Float16, nil
	case "float64", "f64":
		return Float64, nil
	case "int64":
		return Int64, nil
	case "int32":
		return Int32, nil
	}
	return 0, fmt.Errorf("torch: unknown dtype %q (want float32, bfloat16, float16, float64, int64 or int32)", s)
}

// DeviceType is CPU or CUDA.
type DeviceType int32

// Device types.
const (
	DeviceCPU  DeviceType = 0
	DeviceCUDA DeviceType = 1
)

// Device names a device: the CPU, or one CUDA device by index.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: DeviceCPU}

// CUDA returns the CUDA device with the given index.
func CUDA(index int) Device { return Device{Type: DeviceCUDA, Index: index} }

func (d Device) String() string {
	if d.Type == DeviceCUDA {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}

// ParseDevice maps "cpu", "cuda", "cuda:N" and "auto" (CUDA when available) to a Device.
func ParseDevice(s string) (Device, error) {
	switch s {
	case "cpu":
		return CPU, nil
	case "auto":
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case "cuda":
		s = "cuda:0"
	}
	var i int
	if _, err := fmt.Sscanf(s, "cuda:%d", &i); err == nil && i >= 0 {
		if i >= CUDADeviceCount() {
			return Device{}, fmt.Errorf("torch: device %s requested but %d CUDA devices are available (%s)", s, CUDADeviceCount(), CUDAStatus())
		}
		return CUDA(i), nil
	}
	return Device{}, fmt.Errorf("torch: unknown device %q (want cpu, cuda, cuda:N or auto)", s)
}

// Error is a failure reported by libtorch or by the binding.
type Error struct {
	Op  string // the operation, e.g. "matmul"
	Msg string // libtorch's message
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// ErrClosed is returned when a tensor or scope is used after it was freed or closed.
var ErrClosed = errors.New("torch: use of a closed tensor or scope")

// check converts a pt_err into an *Error and frees the C string.
func check(op string, e C.pt_err) error {
	if e == nil {
		return nil
	}
	msg := C.GoString((*C.char)(e))
	C.pt_free_err(e)
	return &Error{Op: op, Msg: msg}
}

var (
	initOnce  sync.Once
	cudaCount int
	cudaMsg   string
)

func ensureInit() {
	initOnce.Do(func() {
		var msg *C.char
		C.pt_init(&msg)
		if msg != nil {
			cudaMsg = C.GoString(msg)
			C.free(unsafe.Pointer(msg))
		}
		cudaCount = int(C.pt_cuda_device_count())
		limit, err := cpuReuseFromEnv()
		if err != nil {
			fmt.Fprintln(os.Stderr, "pioneer:", err)
		}
		SetCPUReuse(limit)
	})
}

func init() { ensureInit() }

// CUDAAvailable reports whether at least one CUDA device can be used.
func CUDAAvailable() bool { return cudaCount > 0 }

// CUDADeviceCount is the number of visible CUDA devices.
func CUDADeviceCount() int { return cudaCount }

// CUDAStatus says why CUDA is unavailable, or how many devices there are.
func CUDAStatus() string {
	if cudaCount > 0 {
		return fmt.Sprintf("%d CUDA device(s)", cudaCount)
	}
	if cudaMsg == "" {
		return "CUDA not available"
	}
	return "CUDA not available: " + cudaMsg
}

// Version is the libtorch version the binding was compiled against.
func Version() string {
	var out *C.char
	if err := check("version", C.pt_version(&out)); err != nil {
		return "unknown"
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out)
}

// LiveTensors is the number of tensor handles not yet freed, across all scopes.
func LiveTensors() int64 { return int64(C.pt_live_tensors()) }

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) { C.pt_set_num_threads(C.int(n)) }

// SetThreadNumThreads sets the number of threads libtorch's kernels (its own parallel
// loops and MKL's matrix products) use when called from the calling OS thread, leaving
// other threads' counts as they are, and returns the previous count (n < 1 counts as 1).
// The goroutine must stay on its thread (runtime.LockOSThread). A thread that works on
// one shard of a batch while other threads work on the rest runs single-threaded kernels,
// so that no kernel waits for another core at a barrier.
func SetThreadNumThreads(n int) int { return int(C.pt_thread_set_num_threads(C.int(max(n, 1)))) }

// NumThreads is libtorch's intra-op thread count.
func NumThreads() int { return int(C.pt_get_num_threads()) }

// ManualSeed seeds libtorch's default generators (CPU and every CUDA device).
func ManualSeed(seed uint64) { C.pt_manual_seed(C.uint64_t(seed)) }

// Synchronize waits for all work queued on the device to finish (a no-op on the CPU).
func Synchronize(d Device) error {
	return check("synchronize", C.pt_synchronize(C.int32_t(d.Type), C.int32_t(d.Index)))
}
