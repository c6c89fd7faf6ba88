package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Builder collects the metadata and tensors of a GGUF file (version 3, little-endian)
// and writes it.
type Builder struct {
	Alignment uint64 // 0: DefaultAlignment
	kvs       []KV
	keys      map[string]bool
	tensors   []pending
	names     map[string]bool
}

type pending struct {
	info TensorInfo
	data []byte
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder { return &Builder{keys: map[string]bool{}, names: map[string]bool{}} }

// Set adds a metadata entry; v is one of the Go types Value.Data holds for its type
// (uint8 ... float64, bool, string), or an array: []string, []int32, []float32, or
// []Value of one element type. A repeated key is an error.
func (b *Builder) Set(key string, v any) error {
	if b.keys[key] {
		return fmt.Errorf("gguf: metadata key %q set twice", key)
	}
	val, err := toValue(v)
	if err != nil {
		return fmt.Errorf("gguf: %s: %w", key, err)
	}
	b.keys[key] = true
	b.kvs = append(b.kvs, KV{key, val})
	return nil
}

func toValue(v any) (Value, error) {
	switch x := v.(type) {
	case uint8:
		return Value{Type: TypeUint8, Data: x}, nil
	case int8:
		return Value{Type: TypeInt8, Data: x}, nil
	case uint16:
		return Value{Type: TypeUint16, Data: x}, nil
	case int16:
		return Value{Type: TypeInt16, Data: x}, nil
	case uint32:
		return Value{Type: TypeUint32, Data: x}, nil
	case int32:
		return Value{Type: TypeInt32, Data: x}, nil
	case uint64:
		return Value{Type: TypeUint64, Data: x}, nil
	case int64:
		return Value{Type: TypeInt64, Data: x}, nil
	case float32:
		return Value{Type: TypeFloat32, Data: x}, nil
	case float64:
		return Value{Type: TypeFloat64, Data: x}, nil
	case bool:
		return Value{Type: TypeBool, Data: x}, nil
	case string:
		return Value{Type: TypeString, Data: x}, nil
	case []string:
		return Value{Type: TypeArray, Elem: TypeString, Data: x}, nil
	case []int32:
		return Value{Type: TypeArray, Elem: TypeInt32, Data: x}, nil
	case []float32:
		return Value{Type: TypeArray, Elem: TypeFloat32, Data: x}, nil
	case []Value:
		if len(x) == 0 {
			return Value{}, fmt.Errorf("an empty []Value has no element type")
		}
		for _, e := range x[1:] {
			if e.Type != x[0].Type {
				return Value{}, fmt.Errorf("array elements of types %s and %s", x[0].Type, e.Type)
			}
		}
		return Value{Type: TypeArray, Elem: x[0].Type, Data: x}, nil
	case Value:
		return x, nil
	}
	return Value{}, fmt.Errorf("no GGUF value type for %T", v)
}

// AddTensor adds a tensor of type t whose row-major shape is shape, with data already in
// t's encoding (see Quantize).
func (b *Builder) AddTensor(name string, t Type, shape []int64, data []byte) error {
	if b.names[name] {
		return fmt.Errorf("gguf: tensor %q added twice", name)
	}
	info := TensorInfo{Name: name, Type: t, Dims: make([]uint64, len(shape))}
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("gguf: tensor %q: shape %v", name, shape)
		}
		info.Dims[len(shape)-1-i] = uint64(d)
	}
	if err := info.check(0); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if uint64(len(data)) != info.Size {
		return fmt.Errorf("gguf: tensor %q: %d bytes of %s for shape %v, want %d", name, len(data), t, shape, info.Size)
	}
	b.names[name] = true
	b.tensors = append(b.tensors, pending{info, data})
	return nil
}

// WriteFile writes the file atomically (a temporary file renamed into place).
func (b *Builder) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.gguf")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	_, err = b.WriteTo(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp makes it 0600
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	return fsutil.SyncDir(filepath.Dir(path))
}

// WriteTo writes the file to w.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	align := b.Alignment
	if align == 0 {
		align = DefaultAlignment
	}
	if align&(align-1) != 0 {
		return 0, fmt.Errorf("gguf: alignment %d is not a power of two", align)
	}
	e := &encoder{}
	e.u32(magic)
	e.u32(3)
	e.u64(uint64(len(b.tensors)))
	kvs := b.kvs
	if align != DefaultAlignment && !b.keys["general.alignment"] {
		kvs = append(kvs, KV{"general.alignment", Value{Type: TypeUint32, Data: uint32(align)}})
	}
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		if err := e.value(kv.Value); err != nil {
			return 0, fmt.Errorf("gguf: %s: %w", kv.Key, err)
		}
	}
	var offset uint64
	for i := range b.tensors {
		t := &b.tensors[i].info
		t.Offset = offset
		offset = alignUp(offset+t.Size, align)
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
	}
	e.pad(align)
	n, err := w.Write(e.buf)
	total := int64(n)
	if err != nil {
		return total, err
	}
	for _, p := range b.tensors {
		n, err := w.Write(p.data)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if pad := alignUp(uint64(len(p.data)), align) - uint64(len(p.data)); pad > 0 {
			n, err := w.Write(make([]byte, pad))
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

type encoder struct{ buf []byte }

func (e *encoder) u32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) pad(a uint64) {
	for uint64(len(e.buf))%a != 0 {
		e.buf = append(e.buf, 0)
	}
}

// value writes v's payload (its type tag is the caller's).
func (e *encoder) value(v Value) error {
	switch x := v.Data.(type) {
	case uint8:
		e.buf = append(e.buf, x)
	case int8:
		e.buf = append(e.buf, uint8(x))
	case uint16:
		e.buf = binary.LittleEndian.AppendUint16(e.buf, x)
	case int16:
		e.buf = binary.LittleEndian.AppendUint16(e.buf, uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float32:
		e.u32(math.Float32bits(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		if x {
			e.buf = append(e.buf, 1)
		} else {
			e.buf = append(e.buf, 0)
		}
	case string:
		e.str(x)
	case []string:
		e.u32(uint32(TypeString))
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []int32:
		e.u32(uint32(TypeInt32))
		e.u64(uint64(len(x)))
		for _, n := range x {
			e.u32(uint32(n))
		}
	case []float32:
		e.u32(uint32(TypeFloat32))
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []Value:
		e.u32(uint32(v.Elem))
		e.u64(uint64(len(x)))
		for _, el := range x {
			if err := e.value(el); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("cannot encode %T", v.Data)
	}
	return nil
}
