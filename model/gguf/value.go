package gguf

import (
	"fmt"
	"math"
)

// ValueType is a metadata value's type (gguf.md's gguf_metadata_value_type).
type ValueType uint32

// The metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = []string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) known() bool { return int(t) < len(valueTypeNames) }

func (t ValueType) String() string {
	if t.known() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}

// size is the encoded size of a fixed-size type; fixed is false for strings and arrays.
func (t ValueType) size() (n int, fixed bool) {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1, true
	case TypeUint16, TypeInt16:
		return 2, true
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4, true
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8, true
	}
	return 0, false
}

// Value is one metadata value. Data holds, by Type: uint8, int8, uint16, int16, uint32,
// int32, uint64, int64, float32, float64, bool or string; for an array (Type TypeArray,
// element type Elem) []string, []float32 or []int32 for those element types (the
// vocabulary, scores and token types of a tokenizer), else []Value.
type Value struct {
	Type ValueType
	Elem ValueType // arrays only
	Data any
}

// Uint returns an unsigned or non-negative signed integer value.
func (v Value) Uint() (uint64, bool) {
	if u, ok := v.Data.(uint64); ok {
		return u, true
	}
	i, ok := v.Int()
	if !ok || i < 0 {
		return 0, false
	}
	return uint64(i), true
}

// Int returns an integer value of any width (a uint64 above MaxInt64 is not one).
func (v Value) Int() (int64, bool) {
	switch x := v.Data.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// Float returns a floating-point or integer value as float64.
func (v Value) Float() (float64, bool) {
	switch x := v.Data.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.Int(); ok {
		return float64(i), true
	}
	return 0, false
}

// Len is an array's length (0 for a scalar).
func (v Value) Len() int {
	switch x := v.Data.(type) {
	case []string:
		return len(x)
	case []float32:
		return len(x)
	case []int32:
		return len(x)
	case []Value:
		return len(x)
	}
	return 0
}

// Ints returns an array of integers.
func (v Value) Ints() ([]int64, bool) {
	switch x := v.Data.(type) {
	case []int32:
		out := make([]int64, len(x))
		for i, e := range x {
			out[i] = int64(e)
		}
		return out, true
	case []Value:
		out := make([]int64, len(x))
		for i, e := range x {
			n, ok := e.Int()
			if !ok {
				return nil, false
			}
			out[i] = n
		}
		return out, true
	}
	return nil, false
}

// Summary is a short form of the value for people: scalars in full, strings up to 80
// bytes, arrays as their element type and length.
func (v Value) Summary() string {
	if v.Type == TypeArray {
		return fmt.Sprintf("[%d × %s]", v.Len(), v.Elem)
	}
	if s, ok := v.Data.(string); ok {
		if len(s) > 80 {
			return fmt.Sprintf("%q… (%d bytes)", s[:80], len(s))
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v.Data)
}
