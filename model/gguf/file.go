// Package gguf reads and writes GGUF, the file format of llama.cpp and ollama: a header,
// typed metadata, tensor descriptions and aligned tensor data, quantized or not. Open
// maps a file and checks every offset in it; Tensor dequantizes one tensor to float32.
// The Hugging Face view of a file (a model configuration, Hugging Face tensor names, a
// tokenizer.json) is in hf.go and tokenizer.go. It knows no libtorch: model.Open turns
// what it reads into a model.
//
// Format facts are from ggml's docs/gguf.md and the gguf Python package (gguf-py), the
// reference the tests compare against.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/pioneer-ai/pioneer/internal/mmap"
)

// magic is "GGUF" read as a little-endian uint32.
const magic = 0x46554747

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne: the innermost (fastest-varying) dimension first, so a Hugging
	// Face weight of shape (out, in) has Dims [in, out]. Shape gives the row-major order.
	Dims   []uint64
	Type   Type
	Offset uint64 // from the start of the data section
	Size   uint64 // bytes
}

// Elements is the tensor's element count.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape is the row-major shape (outermost first): Dims reversed.
func (t TensorInfo) Shape() []int64 {
	out := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		out[len(t.Dims)-1-i] = int64(d)
	}
	return out
}

// File is an open GGUF file: its metadata and tensor descriptions, and the mapped bytes
// the tensors are read from. Close releases the mapping.
type File struct {
	Path      string
	Version   uint32
	Alignment uint64
	// Metadata in file order; Get finds a key.
	Metadata []KV
	Tensors  []TensorInfo
	// DataOffset is where the data section starts in the file.
	DataOffset uint64

	mem    []byte
	unmap  func([]byte) error
	byName map[string]int
	byKey  map[string]int
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// Open maps the GGUF file at path and parses its header. Anything truncated, misaligned,
// out of range or of an unknown type is an error naming the file and the byte offset.
func Open(path string) (*File, error) {
	mem, unmap, err := mmap.File(path, 24)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f, err := Parse(mem)
	if err != nil {
		_ = unmap(mem) // the parse error is the one to report
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f.Path, f.unmap = path, unmap
	return f, nil
}

// Close releases the file's mapping; the File must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap(f.mem)
	f.mem, f.unmap = nil, nil
	return err
}

// ParseError is a malformed file: what was wrong and the byte offset where.
type ParseError struct {
	Offset uint64
	Msg    string
}

func (e *ParseError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// ErrTruncated is wrapped by errors for a file that ends too early.
var ErrTruncated = errors.New("truncated")

// Parse reads a whole GGUF file held in mem (which the File keeps referring to).
func Parse(mem []byte) (*File, error) {
	r := &reader{mem: mem}
	if r.u32("magic") != magic && r.err == nil {
		return nil, &ParseError{0, fmt.Sprintf("not a GGUF file (magic %q)", mem[:4])}
	}
	f := &File{mem: mem, Alignment: DefaultAlignment, byName: map[string]int{}, byKey: map[string]int{}}
	f.Version = r.u32("version")
	if r.err != nil {
		return nil, r.err
	}
	switch f.Version {
	case 2, 3:
	default:
		if bits.ReverseBytes32(f.Version) <= 3 {
			return nil, &ParseError{4, "big-endian GGUF is not supported"}
		}
		return nil, &ParseError{4, fmt.Sprintf("GGUF version %d is not supported (2 and 3 are)", f.Version)}
	}
	nTensors := r.u64("tensor count")
	nKV := r.u64("metadata count")
	if r.err != nil {
		return nil, r.err
	}
	// Every entry takes at least 12 bytes (a key's length and a type); a count beyond
	// what the file could hold is corrupt, and would otherwise allocate without bound.
	if left := uint64(len(mem)) - r.off; nKV > left/12 || nTensors > left/24 {
		return nil, &ParseError{8, fmt.Sprintf("%d tensors and %d metadata entries cannot fit in %d bytes", nTensors, nKV, left)}
	}
	f.Metadata = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		at := r.off
		key := r.str("metadata key")
		v := r.value(key, 0)
		if r.err != nil {
			return nil, r.err
		}
		if _, dup := f.byKey[key]; dup {
			return nil, &ParseError{at, fmt.Sprintf("metadata key %q appears twice", key)}
		}
		f.byKey[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{key, v})
	}
	if kv, ok := f.Get("general.alignment"); ok {
		a, ok := kv.Uint()
		if !ok || a == 0 || a&(a-1) != 0 {
			return nil, &ParseError{0, fmt.Sprintf("general.alignment %v is not a power of two", kv.Data)}
		}
		f.Alignment = a
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		at := r.off
		t := TensorInfo{Name: r.str("tensor name")}
		n := r.u32("dimension count")
		if r.err != nil {
			return nil, r.err
		}
		if n == 0 || n > maxDims {
			return nil, &ParseError{at, fmt.Sprintf("tensor %q has %d dimensions (1 to %d allowed)", t.Name, n, maxDims)}
		}
		t.Dims = make([]uint64, n)
		for j := range t.Dims {
			t.Dims[j] = r.u64("dimension")
		}
		t.Type = Type(r.u32("tensor type"))
		t.Offset = r.u64("tensor offset")
		if r.err != nil {
			return nil, r.err
		}
		if err := t.check(at); err != nil {
			return nil, err
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, &ParseError{at, fmt.Sprintf("tensor %q appears twice", t.Name)}
		}
		if t.Offset%f.Alignment != 0 {
			return nil, &ParseError{at, fmt.Sprintf("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)}
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(r.off, f.Alignment)
	for _, t := range f.Tensors {
		end := f.DataOffset + t.Offset + t.Size
		if end < f.DataOffset || end > uint64(len(mem)) {
			return nil, &ParseError{f.DataOffset + t.Offset, fmt.Sprintf("tensor %q (%d bytes of %s) runs past the end of the file (%d bytes): %v",
				t.Name, t.Size, t.Type, len(mem), ErrTruncated)}
		}
	}
	return f, nil
}

// check validates a tensor's type and dimensions and sets its byte size.
func (t *TensorInfo) check(at uint64) error {
	l, ok := layouts[t.Type]
	if !ok {
		return &ParseError{at, fmt.Sprintf("tensor %q has unknown type %d", t.Name, uint32(t.Type))}
	}
	n := uint64(1)
	for _, d := range t.Dims {
		if d == 0 || d > math.MaxInt64/n {
			return &ParseError{at, fmt.Sprintf("tensor %q has dimensions %v", t.Name, t.Dims)}
		}
		n *= d
	}
	if t.Dims[0]%uint64(l.blockSize) != 0 {
		return &ParseError{at, fmt.Sprintf("tensor %q: its rows of %d elements are not whole %s blocks of %d", t.Name, t.Dims[0], t.Type, l.blockSize)}
	}
	blocks := n / uint64(l.blockSize)
	if blocks > math.MaxInt64/uint64(l.typeSize) {
		return &ParseError{at, fmt.Sprintf("tensor %q is too large", t.Name)}
	}
	t.Size = blocks * uint64(l.typeSize)
	return nil
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

// Get returns the metadata value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

// String returns a string metadata value, "" when absent or of another type.
func (f *File) String(key string) string {
	v, _ := f.Get(key)
	s, _ := v.Data.(string)
	return s
}

// Tensor returns the description of the tensor called name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Raw returns the bytes of a tensor as stored (a view of the mapping: valid until Close).
func (f *File) Raw(t TensorInfo) []byte {
	start := f.DataOffset + t.Offset
	return f.mem[start : start+t.Size : start+t.Size]
}

// Elements counts the file's tensor elements, in all and by type.
func (f *File) Elements() (int64, map[Type]int64) {
	var n int64
	out := map[Type]int64{}
	for _, t := range f.Tensors {
		n += int64(t.Elements())
		out[t.Type] += int64(t.Elements())
	}
	return n, out
}

// Names lists the tensor names in file order.
func (f *File) Names() []string {
	out := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		out[i] = t.Name
	}
	return out
}

// reader walks the header, remembering the first error.
type reader struct {
	mem []byte
	off uint64
	err error
}

func (r *reader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.mem))-r.off {
		r.err = &ParseError{r.off, fmt.Sprintf("%s: %v (needs %d bytes, %d left)", what, ErrTruncated, n, uint64(len(r.mem))-r.off)}
		return nil
	}
	b := r.mem[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(what string) uint8 {
	if b := r.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str(what string) string {
	at := r.off
	n := r.u64(what + " length")
	if r.err == nil && n > uint64(len(r.mem))-r.off {
		r.err = &ParseError{at, fmt.Sprintf("%s of %d bytes: %v", what, n, ErrTruncated)}
	}
	return string(r.take(n, what))
}

// maxNesting bounds arrays of arrays, which no real file nests deeply.
const maxNesting = 8

// value reads one metadata value (its type first) for key.
func (r *reader) value(key string, depth int) Value {
	at := r.off
	t := ValueType(r.u32(key + ": value type"))
	if r.err != nil {
		return Value{}
	}
	if t != TypeArray {
		return r.scalar(key, t, at)
	}
	return r.array(key, depth, at)
}

// array reads an array's element type, length and elements.
func (r *reader) array(key string, depth int, at uint64) Value {
	if depth >= maxNesting {
		r.err = &ParseError{at, fmt.Sprintf("%s: arrays nested deeper than %d", key, maxNesting)}
		return Value{}
	}
	et := ValueType(r.u32(key + ": array element type"))
	n := r.u64(key + ": array length")
	if r.err != nil {
		return Value{}
	}
	size, fixed := et.size()
	switch {
	case !et.known():
		r.err = &ParseError{at, fmt.Sprintf("%s: unknown array element type %d", key, uint32(et))}
		return Value{}
	case fixed && n > (uint64(len(r.mem))-r.off)/uint64(size),
		!fixed && n > (uint64(len(r.mem))-r.off)/8: // a string or an array takes 8 bytes at least
		r.err = &ParseError{at, fmt.Sprintf("%s: array of %d %s: %v", key, n, et, ErrTruncated)}
		return Value{}
	}
	v := Value{Type: TypeArray, Elem: et}
	switch et {
	case TypeString:
		out := make([]string, n)
		for i := range out {
			out[i] = r.str(key)
		}
		v.Data = out
	case TypeArray:
		out := make([]Value, n)
		for i := range out {
			out[i] = r.array(key, depth+1, r.off)
		}
		v.Data = out
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(r.u32(key))
		}
		v.Data = out
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(r.u32(key))
		}
		v.Data = out
	default:
		out := make([]Value, n)
		for i := range out {
			out[i] = r.scalar(key, et, r.off)
		}
		v.Data = out
	}
	return v
}

// scalar reads a value of a non-array type t.
func (r *reader) scalar(key string, t ValueType, at uint64) Value {
	v := Value{Type: t}
	switch t {
	case TypeUint8:
		v.Data = r.u8(key)
	case TypeInt8:
		v.Data = int8(r.u8(key))
	case TypeUint16:
		v.Data = r.u16(key)
	case TypeInt16:
		v.Data = int16(r.u16(key))
	case TypeUint32:
		v.Data = r.u32(key)
	case TypeInt32:
		v.Data = int32(r.u32(key))
	case TypeUint64:
		v.Data = r.u64(key)
	case TypeInt64:
		v.Data = int64(r.u64(key))
	case TypeFloat32:
		v.Data = math.Float32frombits(r.u32(key))
	case TypeFloat64:
		v.Data = math.Float64frombits(r.u64(key))
	case TypeBool:
		b := r.u8(key)
		if r.err == nil && b > 1 {
			r.err = &ParseError{at, fmt.Sprintf("%s: bool value %d", key, b)}
		}
		v.Data = b == 1
	case TypeString:
		v.Data = r.str(key)
	default:
		if r.err == nil {
			r.err = &ParseError{at, fmt.Sprintf("%s: unknown value type %d", key, uint32(t))}
		}
	}
	return v
}
