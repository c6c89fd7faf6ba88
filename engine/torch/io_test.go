package torch_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	s := scope(t)
	path := filepath.Join(t.TempDir(), "x.safetensors")
	a := s.Float32s([]float32{1, -2, 3.5, 4}, []int64{2, 2}, torch.CPU)
	in := map[string]*torch.Tensor{
		"model.a":    a,
		"model.a_bf": s.To(a, torch.BFloat16, torch.CPU),
		"ids":        s.Int64s([]int64{7, 8, 9}, []int64{3}, torch.CPU),
		"scalar":     s.Scalar(2.5, torch.Float64, torch.CPU),
	}
	if err := torch.Save(path, in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := s.Load(path, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "pt" || len(out) != len(in) {
		t.Fatalf("meta %v, %d tensors", meta, len(out))
	}
	for name, want := range in {
		got := out[name]
		wb, _ := want.Bytes()
		gb, err := got.Bytes()
		if err != nil || string(wb) != string(gb) || got.DType() != want.DType() {
			t.Fatalf("%s: round trip differs (%v %v)", name, got, err)
		}
		shapeIs(t, name, got, want.Shape()...)
	}
}

func TestLoadErrors(t *testing.T) {
	s := scope(t)
	if _, _, err := s.Load(filepath.Join(t.TempDir(), "missing.safetensors"), torch.CPU); err == nil {
		t.Fatal("missing file loaded")
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json}      "), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(bad, torch.CPU); err == nil {
		t.Fatal("corrupt file loaded")
	}
}

func TestLoadHuggingFaceFile(t *testing.T) {
	path := "../../../shared/data/models/tiny-random-gpt2/model.safetensors"
	if _, err := os.Stat(path); err != nil {
		t.Skip("shared data not present")
	}
	s := scope(t)
	ts, _, err := s.Load(path, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "wte", ts["transformer.wte.weight"], 1000, 32)
}
