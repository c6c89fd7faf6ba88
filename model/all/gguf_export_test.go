package all_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/gguf"
)

// forwardLogits runs ids through m (one row) and returns the logits of every position.
func forwardLogits(t *testing.T, m model.CausalLM, ids []int) []float32 {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	in := make([]int64, len(ids))
	for i, v := range ids {
		in[i] = int64(v)
	}
	var out []float32
	if err := torch.NoGrad(func() error {
		var err error
		out, err = m.Forward(s, s.Int64s(in, []int64{1, int64(len(in))}, torch.CPU)).Float32s()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestExportGGUFMatchesTheConverter exports each reference model as F32 GGUF and compares
// it with the file gguf-py wrote in llama.cpp's conventions (scripts/
// gen_gguf_model_fixtures.py): the same tensors (names, types, shapes, bytes) and the same
// hyper-parameters.
func TestExportGGUFMatchesTheConverter(t *testing.T) {
	for _, name := range []string{"llama", "llama3_rope", "mistral", "qwen2", "qwen3", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("../../testdata/models", name)
			m, err := model.Load(dir, torch.CPU, torch.Float32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			path := filepath.Join(t.TempDir(), name+".gguf")
			if err := model.ExportGGUF(m, dir, path, gguf.F32); err != nil {
				t.Fatal(err)
			}
			got, want := openGGUF(t, path), openGGUF(t, filepath.Join("../../testdata/gguf/models", name+".gguf"))
			if g, w := slices.Sorted(slices.Values(got.Names())), slices.Sorted(slices.Values(want.Names())); !slices.Equal(g, w) {
				t.Fatalf("tensors %v, converter %v", g, w)
			}
			for _, wt := range want.Tensors {
				gt, _ := got.Tensor(wt.Name)
				if wt.Name == "rope_freqs.weight" { // computed in float64 here, in float32 by the converter
					g, err1 := got.Float32(gt)
					w, err2 := want.Float32(wt)
					if err1 != nil || err2 != nil || len(g) != len(w) {
						t.Fatalf("rope_freqs.weight: %v, converter %v (%v %v)", g, w, err1, err2)
					}
					for i := range w {
						if math.Abs(float64(g[i]-w[i])) > 1e-6*float64(w[i]) {
							t.Errorf("rope_freqs.weight[%d] = %v, converter %v", i, g[i], w[i])
						}
					}
					continue
				}
				if gt.Type != wt.Type || !slices.Equal(gt.Dims, wt.Dims) || !bytes.Equal(got.Raw(gt), want.Raw(wt)) {
					t.Errorf("%s: %s %v (bytes equal: %v), converter %s %v", wt.Name, gt.Type, gt.Dims, bytes.Equal(got.Raw(gt), want.Raw(wt)), wt.Type, wt.Dims)
				}
			}
			arch := want.String("general.architecture")
			for _, kv := range want.Metadata {
				if !strings.HasPrefix(kv.Key, arch+".") && kv.Key != "general.architecture" {
					continue
				}
				g, ok := got.Get(kv.Key)
				if !ok || fmt.Sprint(g.Data) != fmt.Sprint(kv.Value.Data) {
					t.Errorf("%s = %v, converter %v", kv.Key, g.Data, kv.Value.Data)
				}
			}
		})
	}
}

// TestExportSmolLM2RoundTrip exports SmolLM2 (read from its GGUF) as F32 GGUF and reads
// it back: the tokenizer metadata is the original's and the logits are identical.
func TestExportSmolLM2RoundTrip(t *testing.T) {
	p := openSmolLM2(t)
	path := filepath.Join(t.TempDir(), "smollm2-f32.gguf")
	if err := model.ExportGGUF(p.LM, p.Dir, path, gguf.F32); err != nil {
		t.Fatal(err)
	}
	orig := openGGUF(t, filepath.Join(p.Dir, model.GGUFWeights))
	got := openGGUF(t, path)
	for _, key := range []string{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
		"tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
		"tokenizer.ggml.add_bos_token", "tokenizer.chat_template", "llama.block_count", "llama.rope.freq_base",
		"llama.attention.layer_norm_rms_epsilon", "llama.attention.head_count_kv", "llama.context_length"} {
		w, _ := orig.Get(key)
		g, ok := got.Get(key)
		if !ok || !reflect.DeepEqual(g.Data, w.Data) {
			t.Errorf("%s: %v, original %v", key, g.Summary(), w.Summary())
		}
	}
	q, err := model.Open(path, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ids, err := p.Tokenizer.Encode("The capital of France is", false)
	if err != nil {
		t.Fatal(err)
	}
	ids2, err := q.Tokenizer.Encode("The capital of France is", false)
	if err != nil || !slices.Equal(ids, ids2) {
		t.Fatalf("ids %v, original %v (%v)", ids2, ids, err)
	}
	if a, b := forwardLogits(t, p.LM, ids), forwardLogits(t, q.LM, ids); !slices.Equal(a, b) {
		t.Fatal("the exported model's logits differ from the original's")
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(q.Dir, "config.json"))
	if err != nil || json.Unmarshal(b, &cfg) != nil || cfg["tie_word_embeddings"] != true {
		t.Errorf("exported config %v (%v)", cfg["tie_word_embeddings"], err)
	}
}

// TestExportSmolLM2Q4K exports SmolLM2 as a Q4_K file: the matrices whose rows are whole
// 256-value blocks are Q4_K, the others Q5_0 (llama.cpp's fallback), the tied embedding
// Q8_0 and the norms F32; read back, it continues the prompt with the original's greedy
// token and its next-token distribution stays close to the original's.
func TestExportSmolLM2Q4K(t *testing.T) {
	p := openSmolLM2(t)
	path := filepath.Join(t.TempDir(), "smollm2-q4_k.gguf")
	if err := model.ExportGGUF(p.LM, p.Dir, path, gguf.Q4_K); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, path)
	for name, want := range map[string]gguf.Type{"blk.0.ffn_down.weight": gguf.Q4_K, "blk.29.ffn_down.weight": gguf.Q4_K,
		"blk.0.attn_q.weight": gguf.Q5_0, "blk.3.ffn_up.weight": gguf.Q5_0, "token_embd.weight": gguf.Q8_0, "blk.0.attn_norm.weight": gguf.F32} {
		if ti, ok := f.Tensor(name); !ok || ti.Type != want {
			t.Errorf("%s: %v (present: %v), want %s", name, ti.Type, ok, want)
		}
	}
	if ft, _ := f.Get("general.file_type"); ft.Data != uint32(14) {
		t.Errorf("general.file_type %v, want 14 (llama.cpp's Q4_K_S)", ft.Data)
	}
	q, err := model.Open(path, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ids, err := p.Tokenizer.Encode("The capital of France is", false)
	if err != nil {
		t.Fatal(err)
	}
	last := func(m model.CausalLM) []float32 {
		out := forwardLogits(t, m, ids)
		return out[len(out)-m.Info().VocabSize:]
	}
	a, b := last(p.LM), last(q.LM)
	argmax := func(v []float32) int {
		best := 0
		for i, x := range v {
			if x > v[best] {
				best = i
			}
		}
		return best
	}
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num, den = num+d*d, den+float64(a[i])*float64(a[i])
	}
	rel := math.Sqrt(num / den)
	var kl, za, zb float64
	ma, mb := a[argmax(a)], b[argmax(b)]
	for i := range a {
		za += math.Exp(float64(a[i] - ma))
		zb += math.Exp(float64(b[i] - mb))
	}
	for i := range a {
		pa := math.Exp(float64(a[i]-ma)) / za
		pb := math.Exp(float64(b[i]-mb)) / zb
		if pa > 0 && pb > 0 {
			kl += pa * math.Log(pa/pb)
		}
	}
	// measured: Q8_0 0.0008, Q4_K 0.024 (relative RMS difference of the logits 0.05 and 0.21)
	t.Logf("Q4_K export: next-token KL divergence from the original %.4f, logits relative RMS difference %.4f, p(top) %.3f (original %.3f)", kl, rel, 1/zb, 1/za)
	if argmax(a) != argmax(b) || kl > 0.1 {
		t.Fatalf("Q4_K export: next token %d, original %d; KL divergence %.4f (limit 0.1)", argmax(b), argmax(a), kl)
	}
}
