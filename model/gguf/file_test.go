package gguf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The fixtures are made by scripts/gen_gguf_fixtures.py with the gguf Python package.
const (
	quantsFile = "../../testdata/gguf/quants.gguf"
	quantsJSON = "../../testdata/gguf/quants.json"
)

type reference struct {
	Version   uint32 `json:"version"`
	Alignment uint64 `json:"alignment"`
	Metadata  map[string]struct {
		Types []string        `json:"types"`
		Value json.RawMessage `json:"value"`
	} `json:"metadata"`
	Tensors []struct {
		Name   string   `json:"name"`
		Type   string   `json:"type"`
		Dims   []uint64 `json:"dims"`
		Offset uint64   `json:"offset"`
	} `json:"tensors"`
}

func readReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile(quantsJSON)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

func openFixture(t *testing.T) *File {
	t.Helper()
	f, err := Open(quantsFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// plain turns a value into what encoding/json would decode from the reference's JSON.
func plain(v Value) any {
	switch x := v.Data.(type) {
	case []Value:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case []int32:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = json.Number(jsonOf(e))
		}
		return out
	case []float32:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = json.Number(jsonOf(float64(e)))
		}
		return out
	case string, bool:
		return x
	case float32:
		return json.Number(jsonOf(float64(x)))
	}
	return json.Number(jsonOf(v.Data))
}

func flatten(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := []any{}
	for _, e := range list {
		if inner, ok := flatten(e).([]any); ok {
			out = append(out, inner...)
		} else {
			out = append(out, e)
		}
	}
	return out
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func decodeNumbers(t *testing.T, raw json.RawMessage) any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHeaderMatchesGGUFReader(t *testing.T) {
	ref := readReference(t)
	f := openFixture(t)
	if f.Version != ref.Version || f.Alignment != ref.Alignment {
		t.Fatalf("version %d alignment %d, gguf-py read %d and %d", f.Version, f.Alignment, ref.Version, ref.Alignment)
	}
	if len(f.Metadata) != len(ref.Metadata) {
		t.Fatalf("%d metadata entries, gguf-py read %d", len(f.Metadata), len(ref.Metadata))
	}
	for _, kv := range f.Metadata {
		want, ok := ref.Metadata[kv.Key]
		if !ok {
			t.Errorf("key %q not in the reference", kv.Key)
			continue
		}
		types := []string{strings.ToUpper(kv.Value.Type.String())}
		for v := kv.Value; v.Type == TypeArray; {
			types = append(types, strings.ToUpper(v.Elem.String()))
			inner, ok := v.Data.([]Value)
			if !ok || v.Elem != TypeArray || len(inner) == 0 {
				break
			}
			v = inner[0]
		}
		if !reflect.DeepEqual(types, want.Types) {
			t.Errorf("%s: types %v, gguf-py %v", kv.Key, types, want.Types)
		}
		got := plain(kv.Value)
		if kv.Value.Elem == TypeArray { // gguf-py's contents() flattens nested arrays
			got = flatten(got)
		}
		if w := decodeNumbers(t, want.Value); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, gguf-py %#v", kv.Key, got, w)
		}
	}
	if len(f.Tensors) != len(ref.Tensors) {
		t.Fatalf("%d tensors, gguf-py read %d", len(f.Tensors), len(ref.Tensors))
	}
	for i, want := range ref.Tensors {
		got := f.Tensors[i]
		if got.Name != want.Name || got.Type.String() != want.Type || !reflect.DeepEqual(got.Dims, want.Dims) || f.DataOffset+got.Offset != want.Offset {
			t.Errorf("tensor %d: %s %s %v at %d, gguf-py %s %s %v at %d", i, got.Name, got.Type, got.Dims, f.DataOffset+got.Offset,
				want.Name, want.Type, want.Dims, want.Offset)
		}
	}
}

// TestDequantizeBitExact compares every type with gguf.quants.dequantize's output, bit
// for bit.
func TestDequantizeBitExact(t *testing.T) {
	f := openFixture(t)
	checked := 0
	for _, typ := range supportedTypes() {
		q, ok := f.Tensor(typ.String())
		e, ok2 := f.Tensor(typ.String() + ".expected")
		if !ok || !ok2 {
			t.Errorf("%s: fixture tensors missing", typ)
			continue
		}
		if q.Type != typ {
			t.Errorf("%s: fixture tensor has type %s", typ, q.Type)
		}
		got, err := f.Float32(q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.Float32(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", typ, len(got), len(want))
		}
		bad := 0
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				if bad < 3 {
					t.Errorf("%s[%d] = %v (%#08x), gguf-py %v (%#08x)", typ, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ", typ, bad, len(got))
		}
		checked++
	}
	if checked != 13 {
		t.Fatalf("checked %d types, want 13", checked)
	}
}

func TestDequantizeLargeUsesThreadsAlike(t *testing.T) {
	// A tensor above the serial threshold must dequantize as block-by-block does.
	f := openFixture(t)
	q, _ := f.Tensor("Q4_K")
	raw := f.Raw(q)
	n := int(q.Elements())
	big := bytes.Repeat(raw, (1<<17)/n+1)
	reps := len(big) / len(raw)
	got, err := Dequantize(Q4_K, big, n*reps)
	if err != nil {
		t.Fatal(err)
	}
	one, err := Dequantize(Q4_K, raw, n)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < reps; r++ {
		for i := range one {
			if got[r*n+i] != one[i] {
				t.Fatalf("copy %d element %d: %v, want %v", r, i, got[r*n+i], one[i])
			}
		}
	}
}

func TestVersion2ParsesLikeVersion3(t *testing.T) {
	mem, err := os.ReadFile(quantsFile)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := Parse(bytes.Clone(mem))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(mem[4:], 2)
	f, err := Parse(mem)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.Tensors) != len(v3.Tensors) || len(f.Metadata) != len(v3.Metadata) {
		t.Fatalf("version %d, %d tensors and %d keys; version 3: %d and %d", f.Version, len(f.Tensors), len(f.Metadata), len(v3.Tensors), len(v3.Metadata))
	}
}

func TestMalformedFilesNameTheOffset(t *testing.T) {
	good, err := os.ReadFile(quantsFile)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(change func(b []byte) []byte) []byte { return change(bytes.Clone(good)) }
	cases := map[string]struct {
		mem  []byte
		want string
	}{
		"bad magic":       {mut(func(b []byte) []byte { b[0] = 'X'; return b }), "offset 0: not a GGUF file"},
		"version 1":       {mut(func(b []byte) []byte { b[4] = 1; return b }), "offset 4: GGUF version 1 is not supported"},
		"big-endian":      {mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 3); return b }), "big-endian"},
		"header cut":      {good[:20], "offset 16: metadata count: truncated"},
		"metadata cut":    {good[:1000], "truncated"},
		"data cut":        {good[:dataEnd(f)-1], "runs past the end of the file"},
		"huge count":      {mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<60); return b }), "cannot fit"},
		"bad tensor type": {mut(func(b []byte) []byte { return setTensorField(t, f, b, 0, "type", 99) }), "unknown type 99"},
		"misaligned":      {mut(func(b []byte) []byte { return setTensorField(t, f, b, 1, "offset", f.Tensors[1].Offset+4) }), "not a multiple of the alignment 64"},
		"partial block":   {mut(func(b []byte) []byte { return setTensorField(t, f, b, 6, "dim0", 48) }), "not whole Q4_0 blocks of 32"},
		"zero dimension":  {mut(func(b []byte) []byte { return setTensorField(t, f, b, 0, "dim0", 0) }), "has dimensions [0 3]"},
		"value type 13": {mut(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[24+8+len("general.architecture"):], 13)
			return b
		}), "unknown value type 13"},
		"five dimensions": {mut(func(b []byte) []byte { return setTensorField(t, f, b, 0, "ndims", 5) }), "has 5 dimensions"},
	}
	for name, c := range cases {
		_, err := Parse(c.mem)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%s: %T is not a *ParseError", name, err)
		}
	}
	if _, err := Open("../../testdata/gguf/absent.gguf"); err == nil || !strings.Contains(err.Error(), "absent.gguf") {
		t.Errorf("a missing file: %v", err)
	}
}

// setTensorField overwrites one field of tensor i's description in b.
func setTensorField(t *testing.T, f *File, b []byte, i int, field string, v uint64) []byte {
	t.Helper()
	// tensor descriptions start after the metadata: find tensor i's name, then its fields
	name := f.Tensors[i].Name
	needle := append(binary.LittleEndian.AppendUint64(nil, uint64(len(name))), name...)
	at := bytes.Index(b, needle)
	if at < 0 {
		t.Fatalf("tensor %s not found", name)
	}
	at += len(needle)
	nd := int(binary.LittleEndian.Uint32(b[at:]))
	switch field {
	case "ndims":
		binary.LittleEndian.PutUint32(b[at:], uint32(v))
	case "dim0":
		binary.LittleEndian.PutUint64(b[at+4:], v)
	case "type":
		binary.LittleEndian.PutUint32(b[at+4+8*nd:], uint32(v))
	case "offset":
		binary.LittleEndian.PutUint64(b[at+8+8*nd:], v)
	}
	return b
}

func FuzzParse(f *testing.F) {
	good, err := os.ReadFile(quantsFile)
	if err != nil {
		f.Fatal(err)
	}
	header := good[:2048] // the metadata and the first tensor descriptions
	f.Add(header)
	f.Add(good[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors { // whatever parses must be readable in bounds
			_ = file.Raw(ti)
		}
	})
}

// dataEnd is where the last tensor's bytes end.
func dataEnd(f *File) uint64 {
	var end uint64
	for _, t := range f.Tensors {
		end = max(end, f.DataOffset+t.Offset+t.Size)
	}
	return end
}
