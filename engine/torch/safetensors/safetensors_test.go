package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// build returns a file with the given header JSON (unpadded) followed by
// dataLen bytes of data.
func build(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	for i := range dataLen {
		b = append(b, byte(i))
	}
	return b
}

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	tensors := []Tensor{
		{"w.f32", F32, []int64{2, 3}, pattern(24, 1)},
		{"h.f16", F16, []int64{4}, pattern(8, 2)},
		{"b.bf16", BF16, []int64{1, 2, 1}, pattern(4, 3)},
		{"scalar.f64", F64, []int64{}, pattern(8, 4)},
		{"i64", I64, []int64{3}, pattern(24, 5)},
		{"i32", I32, []int64{1}, pattern(4, 6)},
		{"i16", I16, []int64{3}, pattern(6, 7)},
		{"i8", I8, []int64{5}, pattern(5, 8)},
		{"u8", U8, []int64{1, 1, 3}, pattern(3, 9)},
		{"mask", Bool, []int64{2}, []byte{0, 1}},
		{"f8a", F8E4M3, []int64{3}, pattern(3, 10)},
		{"f8b", F8E5M2, []int64{2}, pattern(2, 11)},
		{"u16", U16, []int64{2}, pattern(4, 12)},
		{"u32", U32, []int64{2}, pattern(8, 13)},
		{"u64", U64, []int64{1}, pattern(8, 14)},
		{"empty.a", F32, []int64{0, 5}, nil},
		{"empty.b", I64, []int64{3, 0}, []byte{}},
		{"zz.scalar", U8, nil, []byte{42}},
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var want []string
	for _, tt := range tensors {
		want = append(want, tt.Name)
	}
	slices.Sort(want)
	if got := f.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if f.Header().Metadata != nil {
		t.Errorf("Metadata = %v, want nil", f.Header().Metadata)
	}
	for _, tt := range tensors {
		info, data, err := f.Tensor(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != tt.Name || info.DType != tt.DType || len(info.Shape) != len(tt.Shape) ||
			(len(tt.Shape) > 0 && !slices.Equal(info.Shape, tt.Shape)) {
			t.Errorf("%s: info %+v, want dtype %s shape %v", tt.Name, info, tt.DType, tt.Shape)
		}
		if !bytes.Equal(data, tt.Data) || info.End-info.Begin != int64(len(tt.Data)) {
			t.Errorf("%s: data %v, want %v", tt.Name, data, tt.Data)
		}
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(raw); (8+n)%8 != 0 {
		t.Errorf("data buffer starts at %d, not 8-byte aligned", 8+n)
	}
	h, _, err := ParseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, f.Header()) {
		t.Errorf("ParseHeader = %+v, Open header = %+v", h, f.Header())
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tensors := []Tensor{{"x", F32, []int64{1}, make([]byte, 4)}}
	for _, md := range []map[string]string{
		{"format": "pt"},
		{"quote\"s": "back\\slash\n", "html": "<a&b>", "unicode": "héllo ✓", "empty": ""},
		{}, // written as no metadata
	} {
		path := filepath.Join(dir, "m.safetensors")
		if err := Write(path, tensors, md); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got := f.Header().Metadata
		if len(md) == 0 && got != nil || len(md) > 0 && !reflect.DeepEqual(got, md) {
			t.Errorf("metadata = %q, want %q", got, md)
		}
		f.Close()
	}
}

// TestWriteLayout pins the writer's byte layout.
func TestWriteLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	err := Write(path, []Tensor{
		{"bias", F32, []int64{2}, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}}, // 1.0, -2.0
		{"a", U8, []int64{}, []byte{7}},
	}, map[string]string{"note": "x<y"})
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"note":"x<y"},` +
		`"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]},` +
		`"bias":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}` + "      " // 138 + 6 spaces
	want := []byte{144, 0, 0, 0, 0, 0, 0, 0}
	want = append(want, header...)
	want = append(want, 7, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file bytes\n got %q\nwant %q", got, want)
	}
}

func TestParseHeaderCorrupt(t *testing.T) {
	tensor := func(name, rest string) string { return `"` + name + `":{` + rest + `}` }
	f32x4 := `"dtype":"F32","shape":[2,2],"data_offsets":[0,16]`
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "too short"},
		{"short file", []byte{1, 2, 3}, "too short"},
		{"header too long", append(binary.LittleEndian.AppendUint64(nil, 123456789), make([]byte, 992)...),
			"header length 123456789 exceeds file size 1000"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<63), "exceeds file size"},
		{"zero header length", build("", 0), "does not start with '{'"},
		{"leading space", build(" {}", 0), "does not start with '{'"},
		{"bad JSON", build(`{"x":`, 0), "header: unexpected end of JSON input"},
		{"not UTF-8", build("{\"\xff\":1}", 0), "UTF-8"},
		{"trailing garbage", build(`{}x`, 0), "after top-level value"},
		{"two objects", build(`{}{}`, 0), "after top-level value"},
		{"duplicate tensor", build("{"+tensor("x", f32x4)+","+tensor("x", f32x4)+"}", 16), "duplicate key"},
		{"duplicate escaped", build(`{"x":{`+f32x4+`},"\u0078":{`+f32x4+`}}`, 16), "duplicate key"},
		{"duplicate field", build("{"+tensor("x", f32x4+`,"dtype":"F32"`)+"}", 16), "duplicate key"},
		{"tensor not object", build(`{"x":[1]}`, 0), "not a JSON object"},
		{"unknown dtype", build("{"+tensor("x", `"dtype":"F128","shape":[1],"data_offsets":[0,16]`)+"}", 16), `unknown dtype "F128"`},
		{"lowercase dtype", build("{"+tensor("x", `"dtype":"f32","shape":[1],"data_offsets":[0,4]`)+"}", 4), "unknown dtype"},
		{"dtype not string", build("{"+tensor("x", `"dtype":4,"shape":[1],"data_offsets":[0,4]`)+"}", 4), "bad dtype"},
		{"missing dtype", build("{"+tensor("x", `"shape":[1],"data_offsets":[0,4]`)+"}", 4), "missing dtype"},
		{"missing shape", build("{"+tensor("x", `"dtype":"F32","data_offsets":[0,4]`)+"}", 4), "missing shape"},
		{"null shape", build("{"+tensor("x", `"dtype":"F32","shape":null,"data_offsets":[0,4]`)+"}", 4), "missing shape"},
		{"missing offsets", build("{"+tensor("x", `"dtype":"F32","shape":[1]`)+"}", 4), "missing data_offsets"},
		{"case-folded key", build("{"+tensor("x", `"DTYPE":"F32","shape":[1],"data_offsets":[0,4]`)+"}", 4), "missing dtype"},
		{"three offsets", build("{"+tensor("x", `"dtype":"F32","shape":[1],"data_offsets":[0,4,8]`)+"}", 4), "3 elements"},
		{"negative offset", build("{"+tensor("x", `"dtype":"F32","shape":[0],"data_offsets":[-4,-4]`)+"}", 0), "invalid data_offsets"},
		{"begin after end", build("{"+tensor("x", `"dtype":"F32","shape":[1],"data_offsets":[4,0]`)+"}", 4), "invalid data_offsets"},
		{"float dim", build("{"+tensor("x", `"dtype":"F32","shape":[1.5],"data_offsets":[0,4]`)+"}", 4), "bad shape"},
		{"huge offset", build("{"+tensor("x", `"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]`)+"}", 4), "bad data_offsets"},
		{"negative dim", build("{"+tensor("x", `"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]`)+"}", 16), "negative dimension"},
		{"shape overflow", build("{"+tensor("x", `"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]`)+"}", 8), "overflows"},
		{"wrong byte count", build("{"+tensor("x", `"dtype":"F32","shape":[2,2],"data_offsets":[0,12]`)+"}", 12),
			`tensor "x": data_offsets [0,12] but shape [2,2] of F32 needs 16 bytes`},
		{"out of range", build("{"+tensor("x", f32x4)+"}", 8), "exceed data buffer of 8 bytes"},
		{"overlap", build("{"+tensor("x", f32x4)+","+tensor("y", `"dtype":"U8","shape":[8],"data_offsets":[8,16]`)+"}", 16), "overlap"},
		{"empty inside other", build("{"+tensor("x", f32x4)+","+tensor("y", `"dtype":"U8","shape":[0],"data_offsets":[8,8]`)+"}", 16), "overlap"},
		{"hole", build("{"+tensor("x", `"dtype":"U8","shape":[4],"data_offsets":[0,4]`)+","+tensor("y", `"dtype":"U8","shape":[4],"data_offsets":[8,12]`)+"}", 12), "hole at bytes [4,8]"},
		{"hole at start", build("{"+tensor("x", `"dtype":"U8","shape":[4],"data_offsets":[4,8]`)+"}", 8), "hole at bytes [0,4]"},
		{"trailing data", build("{"+tensor("x", f32x4)+"}", 20), "cover 16 bytes but the data buffer has 20"},
		{"data without tensors", build(`{}`, 1), "cover 0 bytes"},
		{"metadata not object", build(`{"__metadata__":"x"}`, 0), "__metadata__: not a JSON object"},
		{"metadata number value", build(`{"__metadata__":{"a":1}}`, 0), `value of "a" is not a string`},
		{"metadata null value", build(`{"__metadata__":{"a":null}}`, 0), `value of "a" is not a string`},
		{"metadata duplicate", build(`{"__metadata__":{"a":"1","a":"2"}}`, 0), "duplicate key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, data, err := ParseHeader(tc.file)
			if err == nil {
				t.Fatalf("accepted: %+v, %d data bytes", h, len(data))
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseHeaderValidEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		dataLen      int
		names        []string
	}{
		{"no tensors", `{}`, 0, []string{}},
		{"null metadata", `{"__metadata__":null}`, 0, []string{}},
		{"padded and unknown field", `{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1]}}   `, 2, []string{"x"}},
		{"file order by offset", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"b":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, 3, []string{"b", "a"}},
		{"empty tensors", `{"e2":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e1":{"dtype":"U8","shape":[3,0],"data_offsets":[2,2]},"e0":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, 2, []string{"e0", "a", "e1", "e2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, data, err := ParseHeader(build(tc.header, tc.dataLen))
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != tc.dataLen {
				t.Errorf("data has %d bytes, want %d", len(data), tc.dataLen)
			}
			names := []string{}
			for _, ti := range h.Tensors {
				names = append(names, ti.Name)
			}
			if !slices.Equal(names, tc.names) {
				t.Errorf("tensors %v, want %v", names, tc.names)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.safetensors")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), "safetensors: "+missing+": open: ") {
		t.Errorf("Open(missing) error = %v", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, build(`{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 12), 0o644)
	want := "safetensors: " + bad + `: tensor "x": data_offsets [0,12] but shape [2,2] of F32 needs 16 bytes`
	if _, err := Open(bad); err == nil || err.Error() != want {
		t.Errorf("Open(bad) error = %v, want %s", err, want)
	}
	short := filepath.Join(dir, "short.safetensors")
	os.WriteFile(short, []byte{1}, 0o644)
	if _, err := Open(short); err == nil || !strings.Contains(err.Error(), short+": file of 1 bytes is too short") {
		t.Errorf("Open(short) error = %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(dir) error = %v", err)
	}
	// A header length above the 100 MB limit, in a sparse file large enough
	// to hold it.
	big := filepath.Join(dir, "big.safetensors")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(binary.LittleEndian.AppendUint64(nil, MaxHeaderLen+1))
	fh.Truncate(MaxHeaderLen + 100)
	fh.Close()
	if _, err := Open(big); err == nil || !strings.Contains(err.Error(), "exceeds limit") {
		t.Errorf("Open(big) error = %v", err)
	}
}

func TestFileAccessors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(path, []Tensor{{"x", U8, []int64{3}, []byte{1, 2, 3}}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Tensor("nope"); err == nil || !strings.Contains(err.Error(), `no tensor "nope"`) {
		t.Errorf("Tensor(nope) error = %v", err)
	}
	if _, d, err := f.Tensor("x"); err != nil || cap(d) != 3 {
		t.Errorf("Tensor(x) = %v (cap %d), %v", d, cap(d), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := f.Tensor("x"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tensor after Close error = %v", err)
	}
}

func TestTinyGPT2(t *testing.T) {
	const path = "../../../../shared/data/models/tiny-random-gpt2/model.safetensors"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("test model not available: %v", err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := f.Header()
	if len(h.Tensors) != 64 {
		t.Errorf("%d tensors, want 64", len(h.Tensors))
	}
	if h.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", h.Metadata)
	}
	for _, ti := range h.Tensors {
		if ti.DType != F32 {
			t.Errorf("%s: dtype %s, want F32", ti.Name, ti.DType)
		}
	}
	info, data, err := f.Tensor("transformer.wte.weight")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Shape, []int64{1000, 32}) || len(data) != 1000*32*4 {
		t.Errorf("wte: shape %v, %d bytes", info.Shape, len(data))
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := Write(path, []Tensor{{"x", U8, []int64{2}, []byte{1, 2}}}, map[string]string{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name    string
		tensors []Tensor
		md      map[string]string
		want    string
	}{
		{"wrong size", []Tensor{{"x", F32, []int64{2, 2}, make([]byte, 12)}}, nil,
			`tensor "x": 12 data bytes but shape [2,2] of F32 needs 16 bytes`},
		{"duplicate", []Tensor{{"x", U8, nil, []byte{1}}, {"x", U8, nil, []byte{1}}}, nil, `duplicate tensor name "x"`},
		{"empty name", []Tensor{{"", U8, nil, []byte{1}}}, nil, "empty name"},
		{"reserved name", []Tensor{{"__metadata__", U8, nil, []byte{1}}}, nil, "reserved"},
		{"unknown dtype", []Tensor{{"x", "F128", []int64{1}, make([]byte, 16)}}, nil, "unknown dtype"},
		{"negative dim", []Tensor{{"x", U8, []int64{-1}, nil}}, nil, "negative dimension"},
		{"bad UTF-8 name", []Tensor{{"\xff", U8, nil, []byte{1}}}, nil, "UTF-8"},
		{"bad UTF-8 metadata", []Tensor{{"x", U8, nil, []byte{1}}}, map[string]string{"k": "\xff"}, "UTF-8"},
	} {
		err := Write(path, tc.tensors, tc.md)
		if err == nil || !strings.HasPrefix(err.Error(), "safetensors: "+path+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("old file changed")
	}

	// A failure after the temporary file was written: renaming over a
	// non-empty directory fails.
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "sub"), 0o755)
	if err := Write(blocked, []Tensor{{"x", U8, nil, []byte{1}}}, nil); err == nil {
		t.Errorf("Write over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"blocked", "m.safetensors"}) {
		t.Errorf("directory holds %v, want no temporary files", names)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(build(`{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}`, 9))
	f.Add(build(`{"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[0,0]}}`, 0))
	f.Add(build(`{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 12))
	f.Add(build(`{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 6))
	f.Add(build(`{"x":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`, 8))
	f.Add(build(`{"x":{"dtype":"I64","shape":[-1],"data_offsets":[0,8]}}`, 8))
	f.Add(build(`{"x":`, 0))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, '{', '}'})
	f.Fuzz(func(t *testing.T, file []byte) {
		h, data, err := ParseHeader(file)
		if err != nil {
			return
		}
		n := binary.LittleEndian.Uint64(file)
		if n > MaxHeaderLen || 8+int(n)+len(data) != len(file) || !bytes.Equal(data, file[8+n:]) {
			t.Fatalf("header length %d, data %d bytes, file %d bytes", n, len(data), len(file))
		}
		var end int64
		seen := map[string]bool{}
		for _, ti := range h.Tensors {
			if seen[ti.Name] || ti.Name == metadataKey {
				t.Fatalf("bad or duplicate name %q", ti.Name)
			}
			seen[ti.Name] = true
			size, err := byteSize(ti.DType, ti.Shape)
			if err != nil || ti.DType.Size() == 0 || ti.Begin != end || ti.End-ti.Begin != size {
				t.Fatalf("tensor %+v after end %d: size %d, %v", ti, end, size, err)
			}
			for _, d := range ti.Shape {
				if d < 0 {
					t.Fatalf("tensor %+v has a negative dim", ti)
				}
			}
			end = ti.End
		}
		if end != int64(len(data)) {
			t.Fatalf("tensors cover %d of %d bytes", end, len(data))
		}
	})
}
