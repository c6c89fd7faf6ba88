#!/usr/bin/env bash
# reference-env.sh — the Python reference environment: PyTorch 2.11.0 (the same libtorch
# the Go engine links) plus the Hugging Face packages the fixtures and benchmarks compare
# against, in an ignored .venv at the repository root. Not needed to build, test or run
# Pioneer; only to regenerate fixtures (scripts/gen_*.py), to run benchmarks, and for
# serve's test with OpenAI's Python client (skipped without it).
# Idempotent; pip's cache makes a second install fast. Prints the venv's python path.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.pioneer-reference-4"
if [ ! -f "$stamp" ]; then
  echo "reference-env: creating $venv (torch 2.11.0 with its CUDA wheels: a few GB, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet torch==2.11.0 numpy transformers==5.17.0 peft==0.21.2 safetensors gguf==0.19.0 openai==3.57.0 >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
