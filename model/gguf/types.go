package gguf

import (
	"fmt"
	"strings"
)

// Type is a tensor's element type, ggml's numbering (ggml.h's enum ggml_type).
type Type uint32

// The tensor types. Those with a Dequantize are readable; the others are named so that
// errors and pioneer info can say what a file holds.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// layout is how a type packs elements: blockSize elements in typeSize bytes.
type layout struct {
	name                string
	blockSize, typeSize int
}

// qkK is the super-block size of the K-quants.
const qkK = 256

// layouts of every type ggml defines (ggml.c's type_traits; the gguf package's
// GGML_QUANT_SIZES).
var layouts = map[Type]layout{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 40},
	Q2_K: {"Q2_K", qkK, 84}, Q3_K: {"Q3_K", qkK, 110}, Q4_K: {"Q4_K", qkK, 144},
	Q5_K: {"Q5_K", qkK, 176}, Q6_K: {"Q6_K", qkK, 210}, Q8_K: {"Q8_K", qkK, 292},
	IQ2_XXS: {"IQ2_XXS", qkK, 66}, IQ2_XS: {"IQ2_XS", qkK, 74}, IQ3_XXS: {"IQ3_XXS", qkK, 98},
	IQ1_S: {"IQ1_S", qkK, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", qkK, 110},
	IQ2_S: {"IQ2_S", qkK, 82}, IQ4_XS: {"IQ4_XS", qkK, 136}, IQ1_M: {"IQ1_M", qkK, 56},
	TQ1_0: {"TQ1_0", qkK, 54}, TQ2_0: {"TQ2_0", qkK, 66}, MXFP4: {"MXFP4", 32, 17},
}

// Known reports whether ggml defines t.
func (t Type) Known() bool { _, ok := layouts[t]; return ok }

// String is ggml's name of the type ("Q4_K"), or "type(N)" for an unknown one.
func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is how many elements one block of t holds (1 for the plain types).
func (t Type) BlockSize() int { return layouts[t].blockSize }

// TypeSize is how many bytes one block of t takes.
func (t Type) TypeSize() int { return layouts[t].typeSize }

// ParseType is the type named s (case-insensitive ggml name: "q8_0", "F16").
func ParseType(s string) (Type, error) {
	for t, l := range layouts {
		if strings.EqualFold(l.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q", s)
}
