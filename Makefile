# Pioneer. `make demo` and `make test` work on a fresh machine: both run scripts/setup.sh
# first, which installs libtorch and the tokenizers library into ignored folders (cached in
# ~/.cache/pioneer). The cgo flags in engine/torch point at third_party/libtorch through
# ${SRCDIR}, so after setup plain `go build ./...` and `go test ./...` work too.

GO ?= go
.PHONY: setup build demo test bench-engine bench-generate bench-train reference-env clean

# Idempotent; a second run takes about a second.
setup:
	bash scripts/setup.sh

build: setup
	$(GO) build -o bin/pioneer ./cmd/pioneer

# The main job on the embedded default: pretrain a small Llama on Tiny Shakespeare.
demo: build
	./bin/pioneer pretrain --out runs/demo

test: setup
	$(GO) vet ./...
	$(GO) test ./...

# Benchmarks (not part of the tests): they need the Python reference environment.
bench-engine: setup reference-env
	$(GO) run ./bench/engine

bench-generate: setup reference-env
	$(GO) run ./bench/generate

bench-train: setup reference-env
	$(GO) run ./bench/train

reference-env:
	bash scripts/reference-env.sh >/dev/null

clean:
	rm -rf bin runs
