#!/usr/bin/env python3
"""gen_gguf_model_fixtures.py — the tiny reference models of testdata/models as GGUF files.

    $(bash scripts/reference-env.sh) scripts/gen_gguf_model_fixtures.py

For llama, llama3_rope (Llama 3 rotary scaling, as the converter stores it: the tensor
rope_freqs.weight), mistral, qwen2, qwen3 and gpt2, writes testdata/gguf/models/<name>.gguf (F32)
with the gguf Python package, following llama.cpp's convert_hf_to_gguf.py conventions: the
tensor names of gguf-py's own TensorNameMap, the query/key row permutation of the llama
architecture (Mistral is stored as llama, with its sliding window), GPT-2's Conv1D weights
transposed and its embedding repeated as output.weight, a tied head left out otherwise,
and the hyper-parameters under <arch>.* keys. No tokenizer: the models have none. The Go
tests load these files and compare with the folders' reference.json (transformers'
logits on the same weights), and compare Pioneer's own export with them.
"""
import json
import os
import sys

import numpy as np
import gguf
from safetensors.numpy import load_file

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_dir = os.path.join(root, "testdata", "gguf", "models")


def permute(w, n_head, n_head_kv):
    # llama.cpp's LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_factors(cfg, rope):
    # llama.cpp's converter (conversion/llama.py, generate_extra_tensors): each rotary
    # frequency's divisor, computed in float32 with torch as it does
    import math
    import torch
    base = cfg.get("rope_theta") or rope.get("rope_theta", 10000.0)
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rope.get("factor", 8.0), rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32).numpy()


def convert(name):
    src = os.path.join(root, "testdata", "models", name)
    cfg = json.load(open(os.path.join(src, "config.json")))
    tensors = load_file(os.path.join(src, "model.safetensors"))
    arch_name = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gpt2": "gpt2"}[cfg["model_type"]]
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3,
            "gpt2": gguf.MODEL_ARCH.GPT2}[arch_name]
    path = os.path.join(out_dir, name + ".gguf")
    w = gguf.GGUFWriter(path, arch=arch_name)
    w.add_name(name)
    if arch_name == "gpt2":
        n_layer = cfg["n_layer"]
        w.add_context_length(cfg["n_positions"])
        w.add_embedding_length(cfg["n_embd"])
        w.add_feed_forward_length(cfg.get("n_inner") or 4 * cfg["n_embd"])
        w.add_block_count(n_layer)
        w.add_head_count(cfg["n_head"])
        w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
    else:
        n_layer = cfg["num_hidden_layers"]
        heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_block_count(n_layer)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
        theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
        w.add_rope_freq_base(theta)
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
        w.add_rope_dimension_count(head_dim)
        if head_dim != cfg["hidden_size"] // heads:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        if cfg["model_type"] == "mistral" and cfg.get("sliding_window"):
            w.add_sliding_window(cfg["sliding_window"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if rope.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_factors(cfg, rope))
    names = gguf.get_tensor_name_map(arch, n_layer)
    for hf in sorted(tensors):
        data = tensors[hf].astype(np.float32)
        if hf.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        if arch_name == "llama" and hf.endswith("q_proj.weight"):
            data = permute(data, heads, heads)
        if arch_name == "llama" and hf.endswith("k_proj.weight"):
            data = permute(data, heads, kv)
        if arch_name == "gpt2" and hf.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            data = data.T.copy()
        new = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        if new is None:
            sys.exit(f"{name}: no GGUF name for {hf}")
        w.add_tensor(new, data)
        if arch_name == "gpt2" and new == "token_embd.weight":
            w.add_tensor("output.weight", data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


os.makedirs(out_dir, exist_ok=True)
for name in ["llama", "llama3_rope", "mistral", "qwen2", "qwen3", "gpt2"]:
    convert(name)
