# Pioneer. `make demo` and `make test` work on a fresh machine: both run scripts/setup.sh
# first, which installs libtorch and the tokenizers library into ignored folders (cached in
# ~/.cache/pioneer). The cgo flags in engine/torch point at third_party/libtorch through
# ${SRCDIR}, so after setup plain `go build ./...` and `go test ./...` work too.

GO ?= go
.PHONY: setup build demo test bench-engine bench-generate bench-train bench-nano reference-env clean

# Idempotent; a second run takes about a second.
setup:
	bash scripts/setup.sh

build: setup
	$(GO) build -o bin/pioneer ./cmd/pioneer

# The main job on the embedded defaults: cold-start mode, from a task description to a
# deployed model. The planner finds the bundled CLINC150 intents (150) for it, a frozen
# evaluation set is drawn, pioneer-nano (Pioneer's own small base model, compiled in) is
# scored on it and LoRA candidates are trained until the wall time; the best is v0 of
# runs/demo, ready for pioneer serve and pioneer adapt. Under 10 minutes on 2 CPU cores.
demo: build
	./bin/pioneer start "sort what people ask a voice assistant into its intents" --iterations 1 --wall-time 2m --eval-size 300 --out runs/demo

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

# pioneer-nano's fine-tuning accuracy against from-scratch training (no Python needed;
# 12 fine-tuning runs: use -device cuda where there is a GPU).
bench-nano: setup
	$(GO) run ./bench/nano

reference-env:
	bash scripts/reference-env.sh >/dev/null

clean:
	rm -rf bin runs
