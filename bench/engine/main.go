// Command engine measures the Go binding against PyTorch eager on the same libtorch, in one
// run on one machine: the per-call overhead of a small op and the wall time of one training
// step (forward, backward, AdamW) of a tiny Llama-style model. It writes
// bench/results/engine_<device>.json and prints a table.
//
//	go run ./bench/engine                      # CPU; Python from scripts/reference-env.sh
//	go run ./bench/engine -device cuda -python /path/to/python
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/llama"
)

type modelSpec struct {
	Vocab        int     `json:"vocab"`
	Hidden       int     `json:"hidden"`
	Intermediate int     `json:"intermediate"`
	Layers       int     `json:"layers"`
	Heads        int     `json:"heads"`
	KVHeads      int     `json:"kv_heads"`
	Eps          float64 `json:"eps"`
	Theta        float64 `json:"theta"`
}

type spec struct {
	Device     string    `json:"device"`
	Threads    int       `json:"threads"`
	OpIters    int       `json:"op_iters"`
	TrainIters int       `json:"train_iters"`
	Reps       int       `json:"reps"`
	WarmupReps int       `json:"warmup_reps"`
	Batch      int       `json:"batch"`
	Seq        int       `json:"seq"`
	Model      modelSpec `json:"model"`
}

type reference struct {
	Torch        string    `json:"torch"`
	Threads      int       `json:"threads"`
	OpOverheadNs []float64 `json:"op_call_overhead_ns"`
	TrainStepMs  []float64 `json:"train_step_ms"`
	TrainFusedMs []float64 `json:"train_step_fused_ms"`
}

func main() {
	device := flag.String("device", "cpu", "cpu or cuda")
	python := flag.String("python", "", "Python with torch 2.11.0 (default: scripts/reference-env.sh's)")
	out := flag.String("out", "", "result file (default bench/results/engine_<device>.json)")
	threads := flag.Int("threads", 0, "intra-op threads for both sides (0: libtorch's default)")
	commit := flag.String("commit", "", "commit to record (default: git rev-parse HEAD), for runs outside a checkout")
	rounds := flag.Int("rounds", 3, "rounds alternating Pioneer and PyTorch")
	flag.Parse()
	if err := run(*device, *python, *out, *threads, *commit, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine:", err)
		os.Exit(1)
	}
}

func run(device, python, out string, threads int, commit string, rounds int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	if threads > 0 {
		torch.SetNumThreads(threads)
	}
	sp := spec{
		Device: dev.String(), Threads: torch.NumThreads(), OpIters: 20000, TrainIters: 10, Reps: 7, WarmupReps: 2,
		Batch: 8, Seq: 64,
		Model: modelSpec{Vocab: 256, Hidden: 64, Intermediate: 172, Layers: 2, Heads: 4, KVHeads: 2, Eps: 1e-5, Theta: 10000},
	}
	if python, err = bench.ReferencePython(python); err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join("bench", "results", "engine_cpu.json")
		if dev.Type == torch.DeviceCUDA {
			out = filepath.Join("bench", "results", "engine_gpu.json")
		}
	}

	// Rounds alternate the two sides so that a slow spell of a shared machine hits both.
	var goOp, goTrain []float64
	ref := &reference{}
	for round := 1; round <= rounds; round++ {
		fmt.Fprintf(os.Stderr, "round %d/%d: measuring Pioneer (Go) ...\n", round, rounds)
		op, err := opOverhead(sp, dev)
		if err != nil {
			return err
		}
		train, err := trainSteps(sp, dev)
		if err != nil {
			return err
		}
		goOp, goTrain = append(goOp, op...), append(goTrain, train...)
		fmt.Fprintf(os.Stderr, "round %d/%d: measuring PyTorch eager (Python) ...\n", round, rounds)
		rr := &reference{}
		if err := bench.RunPython(python, filepath.Join("bench", "engine", "reference.py"), nil, sp, rr); err != nil {
			return err
		}
		ref.Torch = rr.Torch
		ref.OpOverheadNs = append(ref.OpOverheadNs, rr.OpOverheadNs...)
		ref.TrainStepMs = append(ref.TrainStepMs, rr.TrainStepMs...)
		ref.TrainFusedMs = append(ref.TrainFusedMs, rr.TrainFusedMs...)
	}

	method := fmt.Sprintf("%d rounds alternating the two sides; medians of %d repetitions per round (after %d warm-up repetitions) over all rounds; op overhead: %d calls of add on two 1-element float32 tensors per repetition (Pioneer frees results in scopes of 1,000); train step: %d steps per repetition, batch %d x %d tokens, forward + backward + AdamW + zero_grad + loss read-back; %d intra-op threads on both sides",
		rounds, sp.Reps, sp.WarmupReps, sp.OpIters, sp.TrainIters, sp.Batch, sp.Seq, sp.Threads)
	kind := "cpu"
	if dev.Type == torch.DeviceCUDA {
		kind = "gpu"
	}
	cmd := "go run ./bench/engine"
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "commit" {
			cmd += fmt.Sprintf(" -%s %s", f.Name, f.Value)
		}
	})
	r := bench.NewResult("engine_"+kind, cmd, method)
	if commit != "" {
		r.Commit = commit
	}
	refName := "PyTorch " + ref.Torch + " eager (Python)"
	refOp := bench.Median(ref.OpOverheadNs)
	r.Add("op_call_overhead", "ns", bench.Median(goOp), &refOp, refName, false)
	refTrain := bench.Median(ref.TrainStepMs)
	r.Add("train_step_tiny_llama", "ms", bench.Median(goTrain), &refTrain, refName+", torch.optim.AdamW defaults", false)
	refFused := bench.Median(ref.TrainFusedMs)
	r.Add("train_step_tiny_llama_vs_fused_adamw", "ms", bench.Median(goTrain), &refFused, refName+", torch.optim.AdamW(fused=True)", false)
	if err := r.Write(out); err != nil {
		return err
	}
	r.Table(os.Stdout)
	fmt.Println("wrote", out)
	return nil
}

func opOverhead(sp spec, dev torch.Device) ([]float64, error) {
	s := torch.NewScope()
	defer s.Close()
	a := s.Ones([]int64{1}, torch.Float32, dev)
	b := s.Ones([]int64{1}, torch.Float32, dev)
	if err := s.Err(); err != nil {
		return nil, err
	}
	var out []float64
	for rep := 0; rep < sp.WarmupReps+sp.Reps; rep++ {
		if err := torch.Synchronize(dev); err != nil {
			return nil, err
		}
		t0 := time.Now()
		for i := 0; i < sp.OpIters; i += 1000 {
			inner := torch.NewScope()
			for j := 0; j < 1000; j++ {
				inner.Add(a, b)
			}
			if err := inner.Err(); err != nil {
				return nil, err
			}
			inner.Close()
		}
		if err := torch.Synchronize(dev); err != nil {
			return nil, err
		}
		if rep >= sp.WarmupReps {
			out = append(out, float64(time.Since(t0).Nanoseconds())/float64(sp.OpIters))
		}
	}
	return out, nil
}

func trainSteps(sp spec, dev torch.Device) ([]float64, error) {
	c := sp.Model
	m, err := llama.New(llama.Config{
		VocabSize: c.Vocab, HiddenSize: c.Hidden, IntermediateSize: c.Intermediate, NumHiddenLayers: c.Layers,
		NumAttentionHeads: c.Heads, NumKeyValueHeads: c.KVHeads, MaxPositionEmbeddings: sp.Seq,
		RMSNormEps: c.Eps, RopeTheta: c.Theta, TieWordEmbeddings: true,
	}, dev, torch.Float32, 0)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.SetRequiresGrad(true); err != nil {
		return nil, err
	}
	opt, err := training.NewAdamW(m.Parameters(), training.DefaultAdamW(1e-3))
	if err != nil {
		return nil, err
	}
	defer opt.Close()
	data := torch.NewScope()
	defer data.Close()
	g, err := torch.NewGenerator(1, torch.CPU)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	shape := []int64{int64(sp.Batch), int64(sp.Seq)}
	randIDs := func() *torch.Tensor {
		u := data.Rand(shape, torch.Float32, torch.CPU, g)
		return data.To(data.Floor(data.MulScalar(u, float64(c.Vocab))), torch.Int64, dev)
	}
	ids, tg := randIDs(), randIDs()
	if err := data.Err(); err != nil {
		return nil, err
	}
	params := m.Parameters()
	var out []float64
	for rep := 0; rep < sp.WarmupReps+sp.Reps; rep++ {
		if err := torch.Synchronize(dev); err != nil {
			return nil, err
		}
		t0 := time.Now()
		for i := 0; i < sp.TrainIters; i++ {
			s := torch.NewScope()
			loss := model.NextTokenLoss(s, m, ids, tg)
			err := loss.Backward()
			if err == nil {
				err = opt.Step(1e-3)
			}
			if err == nil {
				err = torch.ZeroGrad(params)
			}
			if err == nil {
				_, err = loss.Item()
			}
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return nil, err
			}
		}
		if err := torch.Synchronize(dev); err != nil {
			return nil, err
		}
		if rep >= sp.WarmupReps {
			out = append(out, float64(time.Since(t0).Nanoseconds())/float64(sp.TrainIters)/1e6)
		}
	}
	return out, nil
}
