package gguf

import (
	"fmt"
)

// LoRA adapters as GGUF files, the form llama.cpp's --lora and ollama's ADAPTER take
// (llama.cpp's convert_lora_to_gguf.py): general.type=adapter, adapter.type=lora,
// adapter.lora.alpha, and for each adapted projection "<its GGUF weight name>.lora_a"
// (Hugging Face shape (r, in)) and ".lora_b" ((out, r)). llama.cpp scales each pair by
// alpha / r with r that pair's rank.

// LoRAPair is one adapted projection.
type LoRAPair struct {
	Module string // Hugging Face module path, "model.layers.0.self_attn.q_proj"
	A      []float32
	AShape []int64 // (r, in)
	B      []float32
	BShape []int64 // (out, r)
	Scale  float64 // the adapter's own scale (alpha / r, or its rsLoRA or pattern form)
}

// ExportLoRA builds the GGUF adapter of pairs for a base model whose config.json is
// config. alpha is written as adapter.lora.alpha; every pair's B is rescaled so that
// llama.cpp's alpha / r gives back the pair's own Scale (rank and alpha patterns,
// rsLoRA), and for the llama architecture B's rows get the query/key permutation the
// base weights have.
func ExportLoRA(config map[string]any, alpha float64, pairs []LoRAPair) (*Builder, error) {
	h, err := hparams(config)
	if err != nil {
		return nil, err
	}
	if h.arch == "gpt2" {
		return nil, fmt.Errorf("gguf: exporting GPT-2 adapters (Conv1D layout) is not supported")
	}
	if alpha <= 0 {
		return nil, fmt.Errorf("gguf: lora alpha must be positive, got %v", alpha)
	}
	b := NewBuilder()
	for _, kv := range []KV{
		{"general.architecture", Value{Type: TypeString, Data: h.arch}},
		{"general.type", Value{Type: TypeString, Data: "adapter"}},
		{"adapter.type", Value{Type: TypeString, Data: "lora"}},
		{"adapter.lora.alpha", Value{Type: TypeFloat32, Data: float32(alpha)}},
	} {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	for _, p := range pairs {
		g, ok := h.ggufName(p.Module + ".weight")
		if !ok {
			return nil, fmt.Errorf("gguf: adapted module %q has no GGUF name in architecture %s", p.Module, h.arch)
		}
		if len(p.AShape) != 2 || len(p.BShape) != 2 || p.AShape[0] != p.BShape[1] {
			return nil, fmt.Errorf("gguf: %s: A %v and B %v are not (r, in) and (out, r)", p.Module, p.AShape, p.BShape)
		}
		r := float64(p.AShape[0])
		k := float32(p.Scale * r / alpha)
		bv := make([]float32, len(p.B))
		for i, x := range p.B {
			bv[i] = x * k
		}
		if arches[h.arch].permuteQK {
			if heads := permutedHeads(g, h.heads, h.kvHeads); heads > 0 {
				if bv, err = permute(bv, p.BShape, heads); err != nil {
					return nil, fmt.Errorf("gguf: %s: %w", p.Module, err)
				}
			}
		}
		for _, t := range []struct {
			suffix string
			v      []float32
			shape  []int64
		}{{".lora_a", p.A, p.AShape}, {".lora_b", bv, p.BShape}} {
			raw, err := Quantize(F32, t.v)
			if err != nil {
				return nil, err
			}
			if err := b.AddTensor(g+t.suffix, F32, t.shape, raw); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}
