#!/usr/bin/env bash
# gen_q4k_fixture.sh: the reference for Pioneer's Q4_K quantizer. gguf's Python package
# dequantizes Q4_K but does not quantize it, so the reference is llama.cpp's own
# quantize_row_q4_K_ref (what llama-quantize runs without an importance matrix), compiled
# from the sources scripts/build-llamacpp.sh fetched, with floating-point contraction off
# (a fused multiply-add would round differently from IEEE single precision).
#
# Writes testdata/gguf/q4_k_in.f32 (float32 rows of 512, little-endian: weight-like,
# all-positive, all-negative, zero, constant, heavy-tailed, tiny, huge, mixed sub-blocks)
# and testdata/gguf/q4_k_ref.bin (llama.cpp's 144-byte blocks of them). Needs the reference
# env (scripts/reference-env.sh) for numpy, and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/build-llamacpp.sh | tail -1)
root=$(dirname "$bin")
src="$root/src"
base="$root/build/ggml/src/libggml-base.a"
[ -f "$src/ggml/src/ggml-quants.c" ] && [ -f "$base" ] || { echo "gen_q4k_fixture: llama.cpp sources or build missing under $root" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(-O2 -ffp-contract=off -I"$src/ggml/include" -I"$src/ggml/src")
cc "${flags[@]}" -c "$src/ggml/src/ggml-quants.c" -o "$tmp/quants.o"
cc "${flags[@]}" scripts/q4k_reference.c "$tmp/quants.o" "$base" -lm -lpthread -lstdc++ -o "$tmp/q4k_reference"
.venv/bin/python - "$tmp/in.f32" <<'PY'
import sys
import numpy as np
r = np.random.default_rng(20261201)
rows = [
    r.normal(0, 0.02, 512),                     # weight-like
    r.normal(0, 1, 512),
    r.uniform(0.1, 2, 512),                     # every value positive: the minimum is clamped to 0
    -r.uniform(0.1, 2, 512),                    # every value negative
    np.zeros(512),
    np.full(512, 0.5),
    r.standard_t(2, 512) * 0.05,                # heavy tails
    r.normal(0, 1e-6, 512),                     # scales below float16's normal range
    r.normal(0, 1e3, 512),
    np.concatenate([np.zeros(96), r.normal(0, 3, 64), np.full(32, -1.25), r.normal(0, 1e-3, 320)]),
    np.repeat(r.normal(0, 1, 16), 32),          # each sub-block constant
    r.integers(-8, 8, 512).astype(float),
]
x = np.stack(rows).astype(np.float32)
x[0, 7] = 0.9                                   # an outlier in a weight-like row
x.tofile(sys.argv[1])
PY
"$tmp/q4k_reference" < "$tmp/in.f32" > "$tmp/ref.bin"
cp "$tmp/in.f32" testdata/gguf/q4_k_in.f32
cp "$tmp/ref.bin" testdata/gguf/q4_k_ref.bin
echo "wrote testdata/gguf/q4_k_in.f32 and testdata/gguf/q4_k_ref.bin ($(stat -c %s testdata/gguf/q4_k_ref.bin) bytes of blocks)"
