// Command generate measures batched greedy generation (64 new tokens, batch 1 and 16) of
// Pioneer against Hugging Face transformers' generate on the same machine, the same
// libtorch and the same weights: a tiny random Qwen2 model, one of Qwen2.5-0.5B's shape,
// and the real SmolLM2-135M-Instruct (its GGUF dequantized to a float32 folder both sides
// read). For SmolLM2 it also measures llama.cpp's llama-batched-bench (scripts/
// build-llamacpp.sh) on the same prompts' shape, on Pioneer's f32 GGUF export of the same
// weights and on the Q4_1 file an edge user has, and Pioneer decoding from quantized
// copies of the weights (model.Quantize; rows _quantized_vs_*) against the latter. It writes
// bench/results/generate_<cpu|gpu>.json and prints a table.
//
//	go run ./bench/generate                    # CPU, float32
//	go run ./bench/generate -device cuda -dtype bfloat16 -python python3
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/gguf"
)

type spec struct {
	Model     string    `json:"model"`
	Device    string    `json:"device"`
	DType     string    `json:"dtype"`
	Threads   int       `json:"threads"`
	NewTokens int       `json:"new_tokens"`
	Warmup    int       `json:"warmup"`
	Reps      int       `json:"reps"`
	Batches   [][][]int `json:"batches"`
}

type refRun struct {
	Seconds []float64 `json:"seconds"`
	Tokens  [][]int   `json:"tokens"`
}

type refOut struct {
	Torch        string   `json:"torch"`
	Transformers string   `json:"transformers"`
	Threads      int      `json:"threads"`
	Runs         []refRun `json:"runs"`
}

func main() {
	if err := torch.SpinWorkers(); err != nil { // as pioneer does
		fmt.Fprintln(os.Stderr, "bench/generate: warning:", err)
	}
	device := flag.String("device", "cpu", "cpu or cuda")
	dtype := flag.String("dtype", "float32", "float32, bfloat16 or float16 (both sides)")
	python := flag.String("python", "", "Python with torch 2.11.0 and transformers (default: scripts/reference-env.sh's)")
	cache := flag.String("models", "", "folder for the generated model folders (default: the user cache)")
	reps := flag.Int("reps", 1, "timed repetitions per round and figure (after one warm-up)")
	rounds := flag.Int("rounds", 3, "rounds alternating Pioneer and transformers")
	out := flag.String("out", "", "result file (default bench/results/generate_<cpu|gpu>.json)")
	commit := flag.String("commit", "", "commit to record (default: git rev-parse HEAD)")
	only := flag.String("only", "", "run only this model (tiny-random-qwen2, qwen2.5-0.5b-shape or smollm2-135m-instruct)")
	llamacpp := flag.String("llamacpp", "", "llama.cpp bin folder (default: scripts/build-llamacpp.sh's; absent: no llama.cpp rows)")
	flag.Parse()
	if *llamacpp == "" {
		*llamacpp = bench.LlamaCppBin()
	}
	if err := run(*device, *dtype, *python, *cache, *out, *commit, *only, *llamacpp, *reps, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/generate:", err)
		os.Exit(1)
	}
}

// smollm2 is the real model's name here and in the figures (smollm2_135m_instruct_...).
const smollm2 = "smollm2-135m-instruct"

func run(device, dtypeName, python, cache, out, commit, only, llamacpp string, reps, rounds int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	dtype, err := torch.ParseDType(dtypeName)
	if err != nil {
		return err
	}
	if python, err = bench.ReferencePython(python); err != nil {
		return err
	}
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		cache = filepath.Join(dir, "pioneer", "bench-models")
	}
	kind := "cpu"
	if dev.Type == torch.DeviceCUDA {
		kind = "gpu"
	}
	if out == "" {
		out = filepath.Join("bench", "results", "generate_"+kind+".json")
	}
	const newTokens, promptLen = 64, 32
	cmd := "go run ./bench/generate"
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "commit" && f.Name != "models" {
			cmd += fmt.Sprintf(" -%s %s", f.Name, f.Value)
		}
	})
	method := fmt.Sprintf("greedy decoding of %d new tokens after %d-token prompts (random ids, no early stop), batch 1 and 16; %d rounds alternating the two sides, each with 1 warm-up and %d timed runs per figure, median over all timed runs; tokens/s = batch x %d / wall time of the whole generate call (prefill included); %s on both sides; the same weights on both sides (built from config by bench/generate/reference.py); %d intra-op threads",
		newTokens, promptLen, rounds, reps, newTokens, dtypeName, torch.NumThreads())
	r := bench.NewResult("generate_"+kind, cmd, method)
	if commit != "" {
		r.Commit = commit
	}
	var notes []string
	for _, name := range []string{"tiny-random-qwen2", "qwen2.5-0.5b-shape", smollm2} {
		if only != "" && only != name {
			continue
		}
		dir := filepath.Join(cache, name)
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			fmt.Fprintf(os.Stderr, "building %s in %s ...\n", name, dir)
			if name == smollm2 {
				err = unpackSmolLM2(dir)
			} else {
				c := exec.Command(python, "bench/generate/reference.py", "make", dir, name)
				c.Stderr = os.Stderr
				err = c.Run()
			}
			if err != nil {
				return fmt.Errorf("making %s: %w", name, err)
			}
		}
		// llama.cpp, for the real model on the CPU: Pioneer's f32 GGUF of the same weights
		// and the Q4_1 file itself
		var cppFiles []cppFile
		cppTimes := map[string][][]float64{}
		if name == smollm2 && dev.Type == torch.DeviceCPU {
			if _, err := os.Stat(filepath.Join(llamacpp, "llama-batched-bench")); err == nil {
				q41, err := data.InstalledModels[data.SmolLM2].Path()
				if err != nil {
					return err
				}
				f32 := filepath.Join(cache, smollm2+"-f32.gguf")
				if _, err := os.Stat(f32); err != nil {
					if err := exportF32(dir, f32); err != nil {
						return err
					}
				}
				cppFiles = []cppFile{{"llamacpp", "f32", f32}, {"llamacpp_q4_1", "Q4_1", q41}}
			} else {
				notes = append(notes, "no llama.cpp rows: "+err.Error()+" (bash scripts/build-llamacpp.sh)")
			}
		}
		rng := rand.New(rand.NewPCG(7, 7))
		info, err := model.Inspect(dir)
		if err != nil {
			return err
		}
		var batches [][][]int
		for _, B := range []int{1, 16} {
			rows := make([][]int, B)
			for b := range rows {
				rows[b] = make([]int, promptLen)
				for t := range rows[b] {
					rows[b][t] = 3 + rng.IntN(info.VocabSize-3)
				}
			}
			batches = append(batches, rows)
		}
		sp := spec{Model: dir, Device: dev.String(), DType: dtypeName, Threads: torch.NumThreads(), NewTokens: newTokens,
			Warmup: 1, Reps: reps, Batches: batches}

		m, err := model.Load(dir, dev, dtype)
		if err != nil {
			return err
		}
		// The real model on the CPU is also decoded from quantized weights (model.Quantize:
		// the Q4_1 file's projections in 4 bits, exactly), against llama.cpp's Q4_1 kernels.
		var mq model.CausalLM
		if name == smollm2 && dev.Type == torch.DeviceCPU && dtype == torch.Float32 {
			if mq, err = model.Load(dir, dev, dtype); err != nil {
				return err
			}
			if _, err := model.Quantize(mq); err != nil {
				return err
			}
		}
		// timed runs lm's generate calls: 1 warm-up and reps timed runs per batch, their
		// times appended to times; it returns the tokens of the last run of each batch.
		timed := func(lm model.CausalLM, times [][]float64) ([][][]int, error) {
			var out [][][]int
			for i, prompts := range batches {
				var toks [][]int
				for rep := 0; rep < 1+reps; rep++ {
					if err := torch.Synchronize(dev); err != nil {
						return nil, err
					}
					t0 := time.Now()
					c, err := infer.Generate(lm, prompts, infer.GenerateOptions{MaxNewTokens: newTokens})
					if err != nil {
						return nil, err
					}
					if err := torch.Synchronize(dev); err != nil {
						return nil, err
					}
					if rep > 0 {
						times[i] = append(times[i], time.Since(t0).Seconds())
					}
					toks = toks[:0]
					for _, cc := range c {
						toks = append(toks, cc.Tokens)
					}
				}
				out = append(out, toks)
			}
			return out, nil
		}
		// Rounds alternate the two sides so that a slow spell of a shared machine hits both.
		goTimes := make([][]float64, len(batches))
		quantTimes := make([][]float64, len(batches))
		refTimes := make([][]float64, len(batches))
		var goTokens, quantTokens [][][]int
		var ref *refOut
		for round := 0; round < rounds; round++ {
			fmt.Fprintf(os.Stderr, "%s: round %d/%d: Pioneer ...\n", name, round+1, rounds)
			if goTokens, err = timed(m, goTimes); err != nil {
				return err
			}
			if mq != nil {
				fmt.Fprintf(os.Stderr, "%s: round %d/%d: Pioneer, quantized weights ...\n", name, round+1, rounds)
				if quantTokens, err = timed(mq, quantTimes); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "%s: round %d/%d: transformers ...\n", name, round+1, rounds)
			ref = &refOut{}
			if err := bench.RunPython(python, filepath.Join("bench", "generate", "reference.py"), []string{"run"}, sp, ref); err != nil {
				return err
			}
			for i := range batches {
				refTimes[i] = append(refTimes[i], ref.Runs[i].Seconds...)
			}
			for _, f := range cppFiles {
				fmt.Fprintf(os.Stderr, "%s: round %d/%d: llama.cpp (%s) ...\n", name, round+1, rounds, f.precision)
				t, err := batchedBench(llamacpp, f.path, promptLen, newTokens, []int{1, 16}, 1+reps)
				if err != nil {
					return err
				}
				if cppTimes[f.key] == nil {
					cppTimes[f.key] = make([][]float64, len(batches))
				}
				for i := range batches {
					cppTimes[f.key][i] = append(cppTimes[f.key][i], t[i][1:]...) // the first run warms up
				}
			}
		}
		m.Close()
		if mq != nil {
			mq.Close()
		}
		refName := fmt.Sprintf("transformers %s generate on PyTorch %s", ref.Transformers, ref.Torch)
		figure := strings.ReplaceAll(name, ".", "_")
		if name == smollm2 {
			figure = "smollm2_135m_instruct"
		}
		for i, B := range []int{1, 16} {
			gt := float64(B*newTokens) / bench.Median(goTimes[i])
			rt := float64(B*newTokens) / bench.Median(refTimes[i])
			r.Add(fmt.Sprintf("%s_tokens_per_s_b%d", figure, B), "tokens/s", gt, &rt, refName, true)
			for _, f := range cppFiles {
				ct := float64(B*newTokens) / bench.Median(cppTimes[f.key][i])
				r.Add(fmt.Sprintf("%s_vs_%s_tokens_per_s_b%d", figure, f.key, B), "tokens/s", gt, &ct,
					fmt.Sprintf("llama.cpp 0.3.36 llama-batched-bench, %s GGUF weights (Pioneer: %s)", f.precision, dtypeName), true)
			}
			if mq != nil {
				qt := float64(B*newTokens) / bench.Median(quantTimes[i])
				for _, f := range cppFiles {
					if f.key != "llamacpp_q4_1" {
						continue
					}
					ct := float64(B*newTokens) / bench.Median(cppTimes[f.key][i])
					r.Add(fmt.Sprintf("%s_quantized_vs_%s_tokens_per_s_b%d", figure, f.key, B), "tokens/s", qt, &ct,
						"llama.cpp 0.3.36 llama-batched-bench, Q4_1 GGUF weights (Pioneer: model.Quantize's copies of the same weights, 4-bit projections, 8-bit output projection)", true)
				}
				r.Add(fmt.Sprintf("%s_quantized_vs_float32_tokens_per_s_b%d", figure, B), "tokens/s", qt, &gt, "Pioneer, float32 weights", true)
			}
			// Greedy paths agree token for token until numerics make one logit overtake another;
			// after a first difference the two continuations are unrelated.
			agreement := func(side string, toks [][]int) {
				identical, prefix := 0, 0
				for b := range toks {
					n := 0
					for n < len(toks[b]) && n < len(ref.Runs[i].Tokens[b]) && toks[b][n] == ref.Runs[i].Tokens[b][n] {
						n++
					}
					prefix += n
					if n == newTokens {
						identical++
					}
				}
				notes = append(notes, fmt.Sprintf("%s%s b%d: %d/%d rows identical to transformers' greedy tokens, mean common prefix %.1f of %d tokens",
					name, side, B, identical, B, float64(prefix)/float64(B), newTokens))
			}
			agreement("", goTokens[i])
			if mq != nil {
				agreement(" quantized", quantTokens[i])
			}
		}
	}
	r.Method += "; " + strings.Join(notes, "; ")
	if err := r.Write(out); err != nil {
		return err
	}
	r.Table(os.Stdout)
	for _, n := range notes {
		fmt.Println(n)
	}
	fmt.Println("wrote", out)
	return nil
}

type cppFile struct{ key, precision, path string }

// unpackSmolLM2 writes SmolLM2-135M-Instruct's weights, dequantized from its GGUF, as a
// float32 Hugging Face folder that both sides load.
func unpackSmolLM2(dir string) error {
	src, err := model.Resolve(data.SmolLM2)
	if err != nil {
		return err
	}
	m, err := model.Load(src, torch.CPU, torch.Float32)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Save(dir); err != nil {
		return err
	}
	return model.CopyCompanionFiles(src, dir)
}

// exportF32 writes the folder's model as an f32 GGUF file for llama.cpp.
func exportF32(dir, path string) error {
	m, err := model.Load(dir, torch.CPU, torch.Float32)
	if err != nil {
		return err
	}
	defer m.Close()
	return model.ExportGGUF(m, dir, path, gguf.F32)
}

// batchedBench runs llama-batched-bench (2 threads, prompts of promptLen tokens, newTokens
// generated) runs times and returns, per parallel count, the wall seconds of each run
// (prompt processing and generation: what Pioneer's figure times too).
func batchedBench(bin, file string, promptLen, newTokens int, parallel []int, runs int) ([][]float64, error) {
	out := make([][]float64, len(parallel))
	npl := make([]string, len(parallel))
	for i, p := range parallel {
		npl[i] = fmt.Sprint(p)
	}
	for r := 0; r < runs; r++ {
		cmd := exec.Command(filepath.Join(bin, "llama-batched-bench"), "-m", file, "-t", "2", "-c", "4096",
			"-npp", fmt.Sprint(promptLen), "-ntg", fmt.Sprint(newTokens), "-npl", strings.Join(npl, ","), "--output-format", "jsonl")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("llama-batched-bench: %w: %s", err, bench.Tail(stderr.String(), 1500))
		}
		found := 0
		for _, line := range strings.Split(stdout.String(), "\n") {
			var row struct {
				PL int     `json:"pl"`
				T  float64 `json:"t"`
			}
			if json.Unmarshal([]byte(line), &row) != nil || row.T <= 0 {
				continue
			}
			for i, p := range parallel {
				if row.PL == p {
					out[i] = append(out[i], row.T)
					found++
				}
			}
		}
		if found != len(parallel) {
			return nil, fmt.Errorf("llama-batched-bench printed %d of %d results: %s", found, len(parallel), bench.Tail(stdout.String(), 1500))
		}
	}
	return out, nil
}
