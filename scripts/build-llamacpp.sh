#!/usr/bin/env bash
# build-llamacpp.sh — build llama.cpp's command-line tools, CPU only, into the user cache:
#
#   ${XDG_CACHE_HOME:-~/.cache}/pioneer/llama.cpp-0.3.36/bin/
#     llama-completion  plain (non-chat) completion: -p ... -n 8 --temp 0 -no-cnv
#     llama-simple      minimal greedy completion
#     llama-cli         interactive chat front end
#     llama-server      HTTP server (-np/--parallel slots, continuous batching)
#     llama-tokenize    prompt -> token ids (--ids)
#     llama-bench       prompt-processing / generation throughput
#     llama-batched-bench, llama-batched   batched-decoding benchmark and example
#
# llama.cpp is a verification tool for Pioneer, not a dependency: it is the reference GGUF
# consumer that checks our GGUF export loads and tokenizes/generates the same, and a
# throughput reference for benchmarks. Nothing enters the repository. The sources are the
# full llama.cpp tree vendored in PyPI's llama-cpp-python==0.3.36 sdist (MIT; 77 MB), checked
# against its SHA-256; only vendor/llama.cpp is extracted. Binaries are linked statically
# (-DBUILD_SHARED_LIBS=OFF), so bin/ needs nothing else.
#
# Idempotent: a finished build leaves a stamp and later runs return at once. The build takes
# 10-20 minutes on 2 cores (run under nice). Needs python3 with pip, cmake >= 3.14, and a C
# and C++17 compiler. The last line of stdout is the bin/ folder.
set -euo pipefail
version=0.3.36
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pioneer
dir="$cache/llama.cpp-$version"
sdist=llama_cpp_python-$version.tar.gz
sum=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
targets=(llama-completion llama-simple llama-cli llama-server llama-tokenize llama-bench
  llama-batched-bench llama-batched)
stamp="$dir/bin/.stamp"
stamp_key="$sum ${targets[*]}"

say() { printf 'build-llamacpp: %s\n' "$*" >&2; }
die() { printf 'build-llamacpp: error: %s\n' "$*" >&2; exit 1; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ]; then
  ok=1
  for t in "${targets[@]}"; do [ -x "$dir/bin/$t" ] || ok=0; done
  if [ "$ok" = 1 ]; then printf '%s\n' "$dir/bin"; exit 0; fi
fi

command -v cmake >/dev/null 2>&1 || die "cmake not found on PATH (apt-get install cmake)"
cxx=${CXX:-$(command -v c++ || command -v g++ || command -v clang++ || true)}
[ -n "$cxx" ] && command -v "$cxx" >/dev/null 2>&1 ||
  die "no C++ compiler found (set CXX, or apt-get install g++)"
cc=${CC:-$(command -v cc || command -v gcc || command -v clang || true)}
[ -n "$cc" ] && command -v "$cc" >/dev/null 2>&1 ||
  die "no C compiler found (set CC, or apt-get install gcc)"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (needed to download from PyPI)"

mkdir -p "$dir/dl"
path="$dir/dl/$sdist"
if [ ! -f "$path" ] || ! echo "$sum  $path" | sha256sum -c --quiet - 2>/dev/null; then
  say "downloading llama-cpp-python==$version sdist from PyPI (77 MB)"
  rm -f "$path"
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$dir/dl" \
    "llama-cpp-python==$version" >&2 || die "pip download llama-cpp-python==$version failed"
  [ -f "$path" ] || die "pip download did not produce $sdist"
  echo "$sum  $path" | sha256sum -c --quiet - || die "checksum mismatch for $sdist"
fi

src="$dir/src"
if [ ! -f "$src/.extracted" ]; then
  say "extracting vendor/llama.cpp"
  rm -rf "$src"
  mkdir -p "$src"
  tar -xzf "$path" -C "$src" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp" ||
    die "extracting vendor/llama.cpp from $sdist failed"
  [ -f "$src/CMakeLists.txt" ] || die "$sdist has no vendor/llama.cpp/CMakeLists.txt"
  touch "$src/.extracted"
fi

build="$dir/build"
jobs=$(nproc 2>/dev/null || echo 2)
say "configuring (cmake, CPU only, static)"
nice -n 10 cmake -S "$src" -B "$build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_RPC=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2 || die "cmake configure failed"

say "building ${targets[*]} with $jobs jobs (10-20 minutes on 2 cores)"
start=$(date +%s)
nice -n 10 cmake --build "$build" --config Release -j"$jobs" --target "${targets[@]}" >&2 ||
  die "cmake build failed"
say "built in $(( $(date +%s) - start ))s"

mkdir -p "$dir/bin"
rm -f "$stamp"
for t in "${targets[@]}"; do
  [ -x "$build/bin/$t" ] || die "build did not produce $build/bin/$t"
  cp -f "$build/bin/$t" "$dir/bin/$t.tmp" && mv -f "$dir/bin/$t.tmp" "$dir/bin/$t"
done
printf '%s\n' "$stamp_key" >"$stamp"
say "installed ${targets[*]} in $dir/bin"
printf '%s\n' "$dir/bin"
