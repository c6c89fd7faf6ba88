package all_test

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	for _, name := range []string{"llama", "mistral", "qwen2", "qwen3", "gpt2"} {
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
	logits := func(m model.CausalLM) []float32 {
		s := torch.NewScope()
		defer s.Close()
		var out []float32
		in := make([]int64, len(ids))
		for i, v := range ids {
			in[i] = int64(v)
		}
		if err := torch.NoGrad(func() error {
			var err error
			out, err = m.Forward(s, s.Int64s(in, []int64{1, int64(len(in))}, torch.CPU)).Float32s()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := logits(p.LM), logits(q.LM); !slices.Equal(a, b) {
		t.Fatal("the exported model's logits differ from the original's")
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(q.Dir, "config.json"))
	if err != nil || json.Unmarshal(b, &cfg) != nil || cfg["tie_word_embeddings"] != true {
		t.Errorf("exported config %v (%v)", cfg["tie_word_embeddings"], err)
	}
}
