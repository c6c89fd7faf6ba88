#!/usr/bin/env bash
# setup.sh — install what Pioneer needs to build, into ignored folders of the repository.
#
#   third_party/libtorch        -> libtorch 2.11.0 (lib/ + include/), or $LIBTORCH when set
#   third_party/lib/libtokenizers.a  (Hugging Face tokenizers, Rust, via github.com/daulet/tokenizers v1.22.1)
#   <cache>/models/SmolLM2-135M-Instruct.Q4_1.gguf  (scripts/fetch-smollm2.sh; PIONEER_NO_SMOLLM2=1 skips)
#
# Idempotent. Downloads and builds are cached in ${XDG_CACHE_HOME:-~/.cache}/pioneer, so a
# second clone on the same machine sets up in seconds (the repository folders are symlinks
# into the cache). Needs: python3 with pip (downloads from PyPI), go, cargo, a C++17 compiler.
#
# Environment:
#   LIBTORCH=/path   use an existing libtorch (>= 2.5, with include/ and lib/libtorch_cpu.so)
#                    instead of downloading; e.g. a Python torch install's site-packages/torch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pioneer
mkdir -p "$cache/dl" "$root/third_party"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

# --- Debian packages ---------------------------------------------------------------------
# A C++ compiler is the only system package the build needs; install it when missing.
if ! command -v g++ >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing g++ (apt-get)"
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
  else
    die "g++ not found; install a C++17 compiler"
  fi
fi
need python3 "needed to download wheels from PyPI"

# fetch_wheel SPEC FILE SHA256: download one wheel from PyPI into the cache and verify it.
fetch_wheel() {
  local spec=$1 file=$2 sum=$3 platform=$4
  local path="$cache/dl/$file"
  if [ ! -f "$path" ] || ! echo "$sum  $path" | sha256sum -c --quiet - 2>/dev/null; then
    say "downloading $spec from PyPI"
    rm -f "$path"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform "$platform" -d "$cache/dl" "$spec" >&2 ||
      die "pip download $spec failed"
    [ -f "$path" ] || die "pip download $spec did not produce $file"
    echo "$sum  $path" | sha256sum -c --quiet - || die "checksum mismatch for $file"
  fi
  printf '%s\n' "$path"
}

# unzip_members WHEEL DEST PATTERN...: extract members matching shell patterns, stripping dirs
# up to the first component after the given prefix. Uses python3 so unzip is not needed.
unzip_members() {
  python3 - "$@" <<'PY'
import fnmatch, os, shutil, sys, zipfile
wheel, dest, prefix, *patterns = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith('/'):
            continue
        rel = name[len(prefix):]
        if not any(fnmatch.fnmatch(rel, p) for p in patterns):
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(out, mode)
PY
}

# --- libtorch ----------------------------------------------------------------------------
TORCH_VERSION=2.11.0
TORCH_WHEEL=torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl
TORCH_SHA=7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a
# The PyPI build of libtorch_cpu links the CUDA runtime and CUPTI (for the profiler), so
# those two small libraries come along even on CPU machines. Versions from the torch
# wheel's requirement cuda-toolkit[cudart,cupti]==13.0.2.
CUDART_WHEEL=nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
CUDART_SHA=7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
CUPTI_WHEEL=nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl
CUPTI_SHA=4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8

if [ "$(uname -m)" != x86_64 ] && [ -z "${LIBTORCH:-}" ]; then
  die "the bundled libtorch download is x86_64 only; set LIBTORCH to a libtorch for $(uname -m)"
fi

if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/include/ATen/ATen.h" ] || die "LIBTORCH=$LIBTORCH has no include/ATen/ATen.h"
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || die "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so"
  torch_dir=$(cd "$LIBTORCH" && pwd)
  say "using LIBTORCH=$torch_dir"
else
  torch_dir="$cache/libtorch-$TORCH_VERSION"
  if [ ! -f "$torch_dir/.complete" ]; then
    t0=$(date +%s)
    whl=$(fetch_wheel "torch==$TORCH_VERSION" "$TORCH_WHEEL" "$TORCH_SHA" manylinux_2_28_x86_64)
    cudart=$(fetch_wheel "nvidia-cuda-runtime==13.0.96" "$CUDART_WHEEL" "$CUDART_SHA" manylinux_2_17_x86_64)
    cupti=$(fetch_wheel "nvidia-cuda-cupti==13.0.85" "$CUPTI_WHEEL" "$CUPTI_SHA" manylinux_2_25_x86_64)
    say "unpacking libtorch $TORCH_VERSION into $torch_dir"
    rm -rf "$torch_dir.tmp" && mkdir -p "$torch_dir.tmp"
    # Only what a CPU build links: libtorch_cpu, libc10 and the OpenMP runtime they need.
    # libtorch_cuda is left out: without the CUDA libraries it cannot load anyway; GPU
    # machines point LIBTORCH at a full install.
    unzip_members "$whl" "$torch_dir.tmp" torch/ 'include/*' 'lib/libtorch_cpu.so' 'lib/libc10.so' 'lib/libgomp.so.1'
    unzip_members "$cudart" "$torch_dir.tmp/lib" nvidia/cu13/lib/ 'libcudart.so.13'
    unzip_members "$cupti" "$torch_dir.tmp/lib" nvidia/cu13/lib/ 'libcupti.so.13'
    echo "$TORCH_VERSION" > "$torch_dir.tmp/.complete"
    rm -rf "$torch_dir" && mv "$torch_dir.tmp" "$torch_dir"
    say "libtorch ready in $(( $(date +%s) - t0 ))s"
  fi
fi
ln -sfn "$torch_dir" "$root/third_party/libtorch"

# --- tokenizers --------------------------------------------------------------------------
TOK_MODULE=github.com/daulet/tokenizers
TOK_VERSION=v1.22.1
tok_dir="$cache/tokenizers-$TOK_VERSION"
if [ ! -f "$tok_dir/libtokenizers.a" ]; then
  need go "needed to fetch the tokenizers module"
  need cargo "needed to build the tokenizers library (install Rust with rustup)"
  t0=$(date +%s)
  src=$(cd "$root" && go mod download -json "$TOK_MODULE@$TOK_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
    die "go mod download $TOK_MODULE@$TOK_VERSION failed"
  build="$cache/tokenizers-build-$TOK_VERSION"
  rm -rf "$build" && mkdir -p "$build" && cp -r "$src/." "$build/" && chmod -R u+w "$build"
  say "building libtokenizers.a with cargo (a few minutes, once)"
  (cd "$build" && cargo build --release --locked --quiet) >&2 || die "cargo build of tokenizers failed"
  mkdir -p "$tok_dir.tmp"
  cp "$build/target/release/libtokenizers.a" "$build/tokenizers.h" "$tok_dir.tmp/"
  rm -rf "$tok_dir" && mv "$tok_dir.tmp" "$tok_dir" && rm -rf "$build"
  say "libtokenizers.a ready in $(( $(date +%s) - t0 ))s"
fi
mkdir -p "$root/third_party/lib"
ln -sfn "$tok_dir/libtokenizers.a" "$root/third_party/lib/libtokenizers.a"

# --- SmolLM2-135M-Instruct --------------------------------------------------------------
# The real pretrained base model (--model smollm2-135m-instruct); PIONEER_NO_SMOLLM2=1 skips it.
if [ -z "${PIONEER_NO_SMOLLM2:-}" ]; then
  bash "$root/scripts/fetch-smollm2.sh"
fi

say "done: third_party/libtorch -> $(readlink "$root/third_party/libtorch")"
