package all_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// reference is testdata/models/NAME/reference.json, written by scripts/gen_fixtures.py from
// Hugging Face transformers on the same random weights.
type reference struct {
	Architecture string        `json:"architecture"`
	Prompts      [][]int       `json:"prompts"`
	Logits       [][][]float64 `json:"logits"`
	Greedy       [][]int       `json:"greedy"`
	BatchGreedy  [][]int       `json:"batch_greedy"`
	Logprobs     []float64     `json:"logprobs"`
	MaxNew       int           `json:"max_new_tokens"`
}

// Tolerances: float32 logits of 2-layer models agree with transformers' eager attention to
// ~1e-6; 1e-4 absolute leaves room for SDPA and kernel differences.
const logitTol, logprobTol = 1e-4, 1e-4

func TestMatchesTransformers(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/models/*/reference.json")
	if len(dirs) < 7 {
		t.Fatalf("found %d fixtures, want 7 (scripts/gen_fixtures.py)", len(dirs))
	}
	for _, refPath := range dirs {
		dir := filepath.Dir(refPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var ref reference
			b, err := os.ReadFile(refPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			m, err := model.Load(dir, torch.CPU, torch.Float32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			compareWithReference(t, m, ref)
		})
	}
}

// TestGGUFMatchesTransformers loads the GGUF copies of the reference models
// (testdata/gguf/models, written by scripts/gen_gguf_model_fixtures.py with the gguf
// package in llama.cpp's conventions) and compares them with the same references.
func TestGGUFMatchesTransformers(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/gguf/models/*.gguf")
	if len(files) != 6 {
		t.Fatalf("found %d GGUF fixtures, want 6", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".gguf")
		t.Run(name, func(t *testing.T) {
			var ref reference
			b, err := os.ReadFile(filepath.Join("../../testdata/models", name, "reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			dir, err := model.Folder(path)
			if err != nil {
				t.Fatal(err)
			}
			if name == "llama3_rope" { // the scaling parameters are recovered from rope_freqs.weight
				cfg, err := model.ReadJSONFile(dir, "config.json", true)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
					"original_max_position_embeddings": 32.0}
				if got, _ := cfg["rope_scaling"].(map[string]any); !reflect.DeepEqual(got, want) {
					t.Fatalf("rope_scaling %v, want %v", got, want)
				}
			}
			m, err := model.Load(dir, torch.CPU, torch.Float32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			compareWithReference(t, m, ref)
		})
	}
}

// compareWithReference checks logits, greedy and batched greedy continuations and
// log-probabilities against transformers' reference.
func compareWithReference(t *testing.T, m model.CausalLM, ref reference) {
	t.Helper()
	if got := m.Info().Architecture; got != ref.Architecture {
		t.Fatalf("architecture %s, reference %s", got, ref.Architecture)
	}
	var worst float64
	for i, p := range ref.Prompts {
		s := torch.NewScope()
		ids := make([]int64, len(p))
		for j, v := range p {
			ids[j] = int64(v)
		}
		var got []float32
		err := torch.NoGrad(func() error {
			var err error
			got, err = m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, torch.CPU)).Float32s()
			return err
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		V := len(ref.Logits[i][0])
		for tt, row := range ref.Logits[i] {
			for v, want := range row {
				d := math.Abs(float64(got[tt*V+v]) - want)
				worst = math.Max(worst, d)
				if d > logitTol {
					t.Fatalf("prompt %d position %d token %d: logit %v, transformers %v", i, tt, v, got[tt*V+v], want)
				}
			}
		}
	}
	t.Logf("max |logit - transformers| = %.2g", worst)
	for i, p := range ref.Prompts {
		c, err := infer.Generate(m, [][]int{p}, infer.GenerateOptions{MaxNewTokens: ref.MaxNew})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c[0].Tokens, ref.Greedy[i]) {
			t.Fatalf("greedy prompt %d: %v, transformers %v", i, c[0].Tokens, ref.Greedy[i])
		}
	}
	batch, err := infer.Generate(m, ref.Prompts, infer.GenerateOptions{MaxNewTokens: ref.MaxNew})
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		if !slices.Equal(batch[i].Tokens, ref.BatchGreedy[i]) {
			t.Fatalf("batched greedy row %d: %v, transformers %v", i, batch[i].Tokens, ref.BatchGreedy[i])
		}
	}
	p := ref.Prompts[0]
	sc, err := infer.Score(m, [][]int{p[:1]}, [][]int{p[1 : len(ref.Logprobs)+1]}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for j, want := range ref.Logprobs {
		if math.Abs(sc[0].TokenLogP[j]-want) > logprobTol {
			t.Fatalf("log-probability %d: %v, transformers %v", j, sc[0].TokenLogP[j], want)
		}
	}
}

// TestHalfPrecision loads the llama fixture computing in bfloat16 and float16, and from a
// copy whose weights are stored in bfloat16, and compares logits with float32 ones.
func TestHalfPrecision(t *testing.T) {
	dir := "../../testdata/models/llama"
	ids := []int64{30, 42, 30, 14, 71, 5, 9}
	logits := func(m model.CausalLM) []float32 {
		s := torch.NewScope()
		defer s.Close()
		var out []float32
		err := torch.NoGrad(func() error {
			l := m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, torch.CPU))
			var err error
			out, err = s.To(l, torch.Float32, torch.CPU).Float32s()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ref, err := model.Load(dir, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want := logits(ref)

	// weights stored as bfloat16
	half := t.TempDir()
	s := torch.NewScope()
	stored := map[string]*torch.Tensor{}
	for _, n := range ref.Names() {
		stored[n] = s.To(ref.Named(n), torch.BFloat16, torch.CPU)
	}
	if err := torch.Save(filepath.Join(half, "model.safetensors"), stored, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	_ = os.WriteFile(filepath.Join(half, "config.json"), cfg, 0o644)

	for _, c := range []struct {
		name  string
		dir   string
		dtype torch.DType
		tol   float64 // relative to the largest logit
	}{
		{"bfloat16 compute", dir, torch.BFloat16, 0.05},
		{"float16 compute", dir, torch.Float16, 0.01},
		{"bfloat16 weights", half, torch.Float32, 0.02},
	} {
		m, err := model.Load(c.dir, torch.CPU, c.dtype)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := logits(m)
		m.Close()
		var scale, worst float64
		for i := range want {
			scale = math.Max(scale, math.Abs(float64(want[i])))
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		if worst > c.tol*scale {
			t.Fatalf("%s: max |logit difference| %v against logits up to %v", c.name, worst, scale)
		}
		t.Logf("%s: max |difference| %.3g (largest logit %.3g)", c.name, worst, scale)
	}
}

func TestUnsupportedArchitecture(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["MambaForCausalLM"]}`), 0o644)
	_, err := model.Load(dir, torch.CPU, torch.Float32)
	if err == nil || !strings.Contains(err.Error(), "MambaForCausalLM is not supported") ||
		!strings.Contains(err.Error(), "Qwen3ForCausalLM") || !strings.Contains(err.Error(), "GPT2LMHeadModel") {
		t.Fatalf("err = %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama"}`), 0o644)
	if _, err := model.Load(dir, torch.CPU, torch.Float32); err == nil || !strings.Contains(err.Error(), "names no architecture") {
		t.Fatalf("no architectures: %v", err)
	}
}

// TestMatchesTransformersCUDA runs every fixture on the GPU (where one is visible): logits
// within 1e-3 of transformers' (float32; cuBLAS may reorder sums) and batched greedy
// decoding identical.
func TestMatchesTransformersCUDA(t *testing.T) {
	if !torch.CUDAAvailable() {
		t.Skip(torch.CUDAStatus())
	}
	dirs, _ := filepath.Glob("../../testdata/models/*/reference.json")
	for _, refPath := range dirs {
		dir := filepath.Dir(refPath)
		var ref reference
		b, _ := os.ReadFile(refPath)
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(dir, torch.CUDA(0), torch.Float32)
		if err != nil {
			t.Fatal(err)
		}
		p := ref.Prompts[2]
		ids := make([]int64, len(p))
		for j, v := range p {
			ids[j] = int64(v)
		}
		s := torch.NewScope()
		var got []float32
		err = torch.NoGrad(func() error {
			var err error
			got, err = s.To(m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, torch.CUDA(0))), torch.Float32, torch.CPU).Float32s()
			return err
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		V := len(ref.Logits[2][0])
		for tt, row := range ref.Logits[2] {
			for v, want := range row {
				if d := math.Abs(float64(got[tt*V+v]) - want); d > 1e-3 {
					t.Fatalf("%s: position %d token %d: cuda logit %v, transformers %v", dir, tt, v, got[tt*V+v], want)
				}
			}
		}
		batch, err := infer.Generate(m, ref.Prompts, infer.GenerateOptions{MaxNewTokens: ref.MaxNew})
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range batch {
			if !slices.Equal(batch[i].Tokens, ref.BatchGreedy[i]) {
				t.Fatalf("%s: cuda batched greedy row %d: %v, transformers %v", dir, i, batch[i].Tokens, ref.BatchGreedy[i])
			}
		}
	}
}
