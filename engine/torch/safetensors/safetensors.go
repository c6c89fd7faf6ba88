// Package safetensors reads and writes the Hugging Face safetensors tensor
// file format.
//
// A safetensors file is laid out as
//
//	[8 bytes]  N, the header length, as a little-endian uint64
//	[N bytes]  a UTF-8 JSON object, the header
//	[rest]     the data buffer
//
// The header maps each tensor name to an object
//
//	{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//
// whose offsets are byte offsets relative to the start of the data buffer;
// tensor data is stored row-major, little-endian. The optional key
// "__metadata__" maps to a string-to-string object of free-form metadata.
// Writers pad the header with trailing spaces so that the data buffer starts
// at an 8-byte aligned file offset.
//
// A file is accepted only if the header is valid JSON without duplicate
// keys, every dtype is known, every tensor's byte range is exactly
// product(shape)*elemsize long (an empty shape is a scalar with one element;
// a shape containing 0 has no bytes), and the tensors neither overlap nor
// leave holes: together they cover the whole data buffer. Header lengths
// larger than the file or than 100 MB are rejected.
//
// Reading is done by mapping the file into memory ([Open]), so tensor bytes
// are not copied; writing ([Write]) is atomic with respect to the target path.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/internal/mmap"
)

// MaxHeaderLen is the largest header length accepted, in bytes (100 MB).
const MaxHeaderLen = 100_000_000

// metadataKey is the reserved header key holding the file's metadata.
const metadataKey = "__metadata__"

// DType is a tensor element type, spelled as in the file header.
type DType string

// The element types of the safetensors format.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
)

// Size returns the number of bytes per element of d, or 0 if d is unknown.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case F8E4M3, F8E5M2, I8, U8, Bool:
		return 1
	}
	return 0
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	// Begin and End delimit the tensor's bytes in the data buffer.
	Begin, End int64
}

// Header is the parsed, validated header of a file.
type Header struct {
	// Metadata is the "__metadata__" object, or nil if there is none.
	Metadata map[string]string
	// Tensors lists the tensors sorted by Begin offset (file order); ties
	// between empty tensors are broken by name.
	Tensors []TensorInfo
}

// formatShape renders a shape as in error messages: [2,3].
func formatShape(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// byteSize returns the number of bytes a tensor of dtype d and the given
// shape occupies, checking the dtype, the dims and overflow.
func byteSize(d DType, shape []int64) (int64, error) {
	size := int64(d.Size())
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q", string(d))
	}
	for _, n := range shape {
		if n < 0 {
			return 0, fmt.Errorf("negative dimension in shape %s", formatShape(shape))
		}
	}
	if slices.Contains(shape, 0) {
		return 0, nil
	}
	for _, n := range shape {
		if size > math.MaxInt64/n {
			return 0, fmt.Errorf("shape %s of %s overflows", formatShape(shape), d)
		}
		size *= n
	}
	return size, nil
}

// ParseHeader validates the header of a complete in-memory safetensors
// file and returns it together with the file's data buffer, a sub-slice of
// file.
func ParseHeader(file []byte) (*Header, []byte, error) {
	h, data, err := parse(file)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	return h, data, nil
}

// parse is ParseHeader without the error prefix.
func parse(file []byte) (*Header, []byte, error) {
	if len(file) < 8 {
		return nil, nil, fmt.Errorf("file of %d bytes is too short for the 8-byte header length", len(file))
	}
	n := binary.LittleEndian.Uint64(file)
	if n > uint64(len(file)-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds file size %d", n, len(file))
	}
	if n > MaxHeaderLen {
		return nil, nil, fmt.Errorf("header length %d exceeds limit of %d bytes", n, MaxHeaderLen)
	}
	raw := file[8 : 8+n]
	data := file[8+n : len(file) : len(file)]
	if !utf8.Valid(raw) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil, errors.New("header does not start with '{'")
	}
	if err := json.Unmarshal(raw, new(json.RawMessage)); err != nil { // syntax
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	h := &Header{Tensors: make([]TensorInfo, 0, len(obj))}
	for _, name := range slices.Sorted(maps.Keys(obj)) { // deterministic errors
		v := obj[name]
		if name == metadataKey {
			if h.Metadata, err = decodeMetadata(v); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", metadataKey, err)
			}
			continue
		}
		t, err := decodeTensor(name, v)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		h.Tensors = append(h.Tensors, t)
	}
	slices.SortFunc(h.Tensors, func(a, b TensorInfo) int {
		return cmp.Or(cmp.Compare(a.Begin, b.Begin), cmp.Compare(a.End, b.End), strings.Compare(a.Name, b.Name))
	})
	var end int64
	for i, t := range h.Tensors {
		switch {
		case t.End > int64(len(data)):
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] exceed data buffer of %d bytes", t.Name, t.Begin, t.End, len(data))
		case t.Begin < end:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] overlap tensor %q", t.Name, t.Begin, t.End, h.Tensors[i-1].Name)
		case t.Begin > end:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] leave a hole at bytes [%d,%d]", t.Name, t.Begin, t.End, end, t.Begin)
		}
		end = t.End
	}
	if end != int64(len(data)) {
		return nil, nil, fmt.Errorf("tensors cover %d bytes but the data buffer has %d", end, len(data))
	}
	return h, data, nil
}

// decodeObject decodes a JSON object, given as syntactically valid JSON,
// rejecting non-objects and duplicate keys.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, _ := dec.Token()
		key := tok.(string) // object keys are strings in valid JSON
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, nil
}

// decodeMetadata decodes the "__metadata__" value: null or an object of
// strings.
func decodeMetadata(raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v, s := obj[k], ""
		if v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return nil, fmt.Errorf("value of %q is not a string", k)
		}
		m[k] = s
	}
	return m, nil
}

// decodeTensor decodes and checks one tensor entry of the header (all but
// its placement relative to other tensors). Unknown fields are ignored.
func decodeTensor(name string, raw json.RawMessage) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	obj, err := decodeObject(raw)
	if err != nil {
		return t, err
	}
	var off []int64
	for _, f := range []struct {
		key string
		dst any
	}{{"dtype", &t.DType}, {"shape", &t.Shape}, {"data_offsets", &off}} {
		v, ok := obj[f.key]
		if !ok || string(v) == "null" {
			return t, fmt.Errorf("missing %s", f.key)
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return t, fmt.Errorf("bad %s: %w", f.key, err)
		}
	}
	if len(off) != 2 {
		return t, fmt.Errorf("data_offsets has %d elements, want 2", len(off))
	}
	t.Begin, t.End = off[0], off[1]
	if t.Begin < 0 || t.End < t.Begin {
		return t, fmt.Errorf("invalid data_offsets [%d,%d]", t.Begin, t.End)
	}
	want, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return t, err
	}
	if t.End-t.Begin != want {
		return t, fmt.Errorf("data_offsets [%d,%d] but shape %s of %s needs %d bytes", t.Begin, t.End, formatShape(t.Shape), t.DType, want)
	}
	return t, nil
}

// File is a safetensors file opened read-only and mapped into memory.
// Its methods may be called concurrently, except Close.
type File struct {
	path   string
	mem    []byte // the whole file
	data   []byte // the data buffer within mem
	header *Header
	index  map[string]int
	unmap  func([]byte) error
}

// Open maps the file at path into memory read-only and validates its
// header. Errors name the path and the problem.
func Open(path string) (*File, error) {
	mem, unmap, err := mmap.File(path, 8) // the 8-byte header length at least
	if err != nil {
		if pe, ok := err.(*os.PathError); ok { // avoid repeating the path
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	h, data, err := parse(mem)
	if err != nil {
		_ = unmap(mem)
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	f := &File{path: path, mem: mem, data: data, header: h, unmap: unmap,
		index: make(map[string]int, len(h.Tensors))}
	for i, t := range h.Tensors {
		f.index[t.Name] = i
	}
	return f, nil
}

// Header returns the file's header. It must not be modified.
func (f *File) Header() *Header { return f.header }

// Names returns the tensor names in file order (by data offset).
func (f *File) Names() []string {
	names := make([]string, len(f.header.Tensors))
	for i, t := range f.header.Tensors {
		names[i] = t.Name
	}
	return names
}

// Tensor returns the description and the bytes of the named tensor. The
// bytes alias the read-only mapping: they must not be written to and are
// valid only until Close.
func (f *File) Tensor(name string) (TensorInfo, []byte, error) {
	if f.mem == nil {
		return TensorInfo{}, nil, fmt.Errorf("safetensors: %s: file is closed", f.path)
	}
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("safetensors: %s: no tensor %q", f.path, name)
	}
	t := f.header.Tensors[i]
	return t, f.data[t.Begin:t.End:t.End], nil
}

// Close unmaps the file. It is idempotent; after it, bytes returned by
// Tensor must no longer be used.
func (f *File) Close() error {
	if f.mem == nil {
		return nil
	}
	mem := f.mem
	f.mem, f.data = nil, nil
	if err := f.unmap(mem); err != nil {
		return fmt.Errorf("safetensors: %s: unmap: %w", f.path, err)
	}
	return nil
}
