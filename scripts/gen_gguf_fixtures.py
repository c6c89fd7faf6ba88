#!/usr/bin/env python3
"""gen_gguf_fixtures.py — fixtures for model/gguf, made with the gguf Python package.

    $(bash scripts/reference-env.sh) scripts/gen_gguf_fixtures.py

Writes testdata/gguf/quants.gguf: for each tensor type Pioneer dequantizes, a tensor of
random blocks (its float16 scales drawn finite) named after the type, and next to it
"<type>.expected", the F32 tensor gguf.quants.dequantize makes of those blocks; for F16,
BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1, random rows "<type>.quantize_in" and "<type>.quantized", what
gguf.quants.quantize makes of them. The file
also carries metadata of every value type (nested arrays too) and a non-default
alignment, and testdata/gguf/quants.json lists that metadata as gguf.GGUFReader reads it
back, for the header test. Deterministic (seeded). Also writes
testdata/gguf/llama2_sentencepiece.jsonl: the sentencepiece package's ids of the golden
strings with the Llama 2 tokenizer.model of ../shared/data.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_dir = os.path.join(root, "testdata", "gguf")
rng = np.random.default_rng(20261201)

# byte offsets of the float16 scale fields in one block of each type (ggml-common.h)
HALVES = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def random_blocks(qtype, n_blocks):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype == Q.F32:
        return rng.standard_normal(n_blocks).astype(np.float32).view(np.uint8)
    if qtype in (Q.F16, Q.BF16):
        bits = rng.integers(0, 1 << 16, n_blocks, dtype=np.uint16)
        exp_mask = 0x7C00 if qtype == Q.F16 else 0x7F80
        bits[(bits & exp_mask) == exp_mask] &= ~np.uint16(0x4000)  # no inf or nan
        bits[:4] = [0x0001, 0x8000, 0x03FF, 0x3C00] if qtype == Q.F16 else [0x0001, 0x8000, 0x007F, 0x3F80]
        return bits.view(np.uint8)
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for off in HALVES[qtype]:
        scale = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def main():
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "quants.gguf")
    w = gguf.GGUFWriter(path, arch="fixture")
    w.add_custom_alignment(64)
    w.add_uint8("fixture.u8", 200)
    w.add_int8("fixture.i8", -100)
    w.add_uint16("fixture.u16", 60000)
    w.add_int16("fixture.i16", -30000)
    w.add_uint32("fixture.u32", 4000000000)
    w.add_int32("fixture.i32", -2000000000)
    w.add_uint64("fixture.u64", 18000000000000000000)
    w.add_int64("fixture.i64", -9000000000000000000)
    w.add_float32("fixture.f32", 0.15625)
    w.add_float64("fixture.f64", -1e-300)
    w.add_bool("fixture.bool", True)
    w.add_string("fixture.str", "héllo ▁wörld\n")
    w.add_array("fixture.strs", ["a", "", "ünï"])
    w.add_array("fixture.ints", [1, -2, 3])
    w.add_array("fixture.floats", [0.5, -1.25])
    w.add_array("fixture.nested", [[1, 2], [3]])
    types = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0,
             Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
    for qtype in types:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        rows, cols = 3, max(block_size, 32) * 2
        raw = random_blocks(qtype, rows * cols // block_size)
        expected = gguf.quants.dequantize(raw.reshape(rows, -1), qtype).astype(np.float32).reshape(rows, cols)
        w.add_tensor(qtype.name, raw.reshape(rows, -1), raw_dtype=qtype)  # a byte shape: (rows, bytes per row)
        w.add_tensor(qtype.name + ".expected", expected)
    # quantization: random rows and what gguf.quants.quantize makes of them
    for qtype in [Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]:
        rows = rng.standard_normal((24, 64)) * 10.0 ** rng.uniform(-3, 2, (24, 1))  # scales from 1e-3 to 1e2
        rows[3] = np.round(rows[3] * 4) / 4  # quarter steps: many ties after scaling
        rows = rows.astype(np.float32)
        rows[0, :8] = [0, -0.0, 1e-8, -6e-5, 65504, 70000, 1.5, -2.5]  # zeros, subnormals, overflow, ties
        rows[1, :32] = 0  # an all-zero block
        w.add_tensor(qtype.name + ".quantize_in", rows)
        q = gguf.quants.quantize(rows, qtype)
        w.add_tensor(qtype.name + ".quantized", q.view(np.uint8).reshape(len(rows), -1), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = gguf.GGUFReader(path)
    meta = {}
    for field in r.fields.values():
        if field.name.startswith("GGUF."):
            continue
        vtypes = [t.name for t in field.types]
        value = field.contents()
        if isinstance(value, bytes):
            value = value.decode()
        meta[field.name] = {"types": vtypes, "value": value}
    tensors = [{"name": t.name, "type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                "offset": int(t.data_offset)} for t in r.tensors]
    with open(os.path.join(out_dir, "quants.json"), "w") as f:
        json.dump({"version": int(r.fields["GGUF.version"].contents()), "alignment": int(r.alignment),
                   "metadata": meta, "tensors": tensors}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)

    # SentencePiece's own ids for the Llama 2 tokenizer (llama2.c's tokenizer.model), for
    # the test that rebuilds it from a GGUF-style vocabulary with scores and no merges.
    import sentencepiece
    shared = os.path.join(root, "..", "shared", "data", "tokenizers")
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(shared, "llama2", "tokenizer.model"))
    texts = [json.loads(l)["text"] for l in open(os.path.join(shared, "golden_encodings.jsonl"))]
    with open(os.path.join(out_dir, "llama2_sentencepiece.jsonl"), "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t, "ids": sp.encode(t)}, ensure_ascii=False) + "\n")
    print(f"sentencepiece {sentencepiece.__version__}: wrote llama2_sentencepiece.jsonl", file=sys.stderr)


if __name__ == "__main__":
    main()
