// Command train measures LoRA fine-tuning (rank 16 on every linear layer) of Pioneer
// against PyTorch + PEFT on the same machine and libtorch: tokens/s and peak resident
// memory, for a tiny Llama, a random model of SmolLM2-135M's shape and the real
// SmolLM2-135M-Instruct (installed by scripts/fetch-smollm2.sh). Each side trains in
// a process of its own so peak RSS is its own. It writes bench/results/train_<cpu|gpu>.json.
//
// With -autocast bfloat16 both sides run the forward pass (loss included) under autocast
// (torch.autocast on the reference side, torch.Autocast on Pioneer's, as training.Train does
// with TrainConfig.Autocast); parameters, gradients and AdamW state stay float32. The
// figures keep their names and the default result file becomes
// bench/results/train_<cpu|gpu>_bf16.json; GPU MFU is then over the bfloat16 peak.
//
// The reference script is found as bench/train/reference.py relative to the working
// directory: run it from the repository root.
//
//	go run ./bench/train
//	go run ./bench/train -device cuda -python python3
//	go run ./bench/train -device cuda -python python3 -autocast bfloat16
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/llama"
)

// spec is shared with reference.py.
type spec struct {
	Config map[string]any `json:"config"` // LlamaConfig fields
	// Weights is a Hugging Face folder to load instead of random weights from Config.
	Weights string   `json:"weights,omitempty"`
	Device  string   `json:"device"`
	Threads int      `json:"threads"`
	R       int      `json:"r"`
	Alpha   float64  `json:"alpha"`
	Targets []string `json:"targets"`
	Batch   int      `json:"batch"`
	Seq     int      `json:"seq"`
	Warmup  int      `json:"warmup"`
	Steps   int      `json:"steps"`
	// Autocast is "bfloat16" for mixed precision in the forward pass; empty: float32.
	Autocast string `json:"autocast,omitempty"`
}

type measured struct {
	Seconds   []float64 `json:"seconds"`
	PeakRSSMB float64   `json:"peak_rss_mb"`
	Torch     string    `json:"torch,omitempty"`
	PEFT      string    `json:"peft,omitempty"`
}

// add pools another process's measurements into m: its step times, the larger peak RSS.
func (m *measured) add(o measured) {
	m.Seconds = append(m.Seconds, o.Seconds...)
	m.PeakRSSMB = max(m.PeakRSSMB, o.PeakRSSMB)
	m.Torch, m.PEFT = o.Torch, o.PEFT
}

// trainModel is one row of the benchmark.
type trainModel struct {
	name   string
	config map[string]any
	batch  int
	seq    int
	steps  int
	// weights names an installed model whose real weights both sides load (a Hugging
	// Face folder exported from it); config is then its own.
	weights string
}

var models = []trainModel{
	{"tiny_llama", map[string]any{"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": true}, 8, 128, 20, ""},
	// SmolLM2-135M's published shape (its config.json), random weights.
	{"smollm2_135m_shape", map[string]any{"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
		"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192,
		"rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true}, 4, 64, 12, ""},
	// SmolLM2-135M-Instruct's real weights (dequantized from its Q4_1 GGUF to float32).
	{"smollm2_135m_instruct", nil, 4, 64, 12, data.SmolLM2},
}

// gpuModels are trained on GPUs only (too slow for two CPU cores).
var gpuModels = []trainModel{
	// Qwen2.5-0.5B's published shape, random weights.
	{"qwen2_5_0_5b_shape", map[string]any{"architectures": []string{"Qwen2ForCausalLM"}, "vocab_size": 151936,
		"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
		"num_key_value_heads": 2, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
		"tie_word_embeddings": true}, 8, 512, 10, ""},
}

// peakFLOPs is the dense float32 (non-tensor-core) peak used for model FLOPs utilisation.
var peakFLOPs = map[string]float64{"NVIDIA H100 80GB HBM3": 67e12, "NVIDIA H200": 67e12}

// peakFLOPsBF16 is the dense (no sparsity) bfloat16 tensor-core peak, for MFU under
// -autocast bfloat16.
var peakFLOPsBF16 = map[string]float64{"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H200": 989e12}

var targets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

func main() {
	device := flag.String("device", "cpu", "cpu or cuda")
	python := flag.String("python", "", "Python with torch 2.11.0, transformers and peft (default: scripts/reference-env.sh's)")
	out := flag.String("out", "", "result file (default bench/results/train_<cpu|gpu>.json)")
	commit := flag.String("commit", "", "commit to record (default: git rev-parse HEAD)")
	autocast := flag.String("autocast", "", "bfloat16: forward pass under autocast on both sides (default bench/results/train_<cpu|gpu>_bf16.json); empty: float32")
	child := flag.String("child", "", "internal: train this model in this process and print JSON")
	specFile := flag.String("spec", "", "internal: the child's spec")
	rounds := flag.Int("rounds", 3, "rounds alternating Pioneer and the reference, each side in a fresh process per round")
	flag.Parse()
	var err error
	if *child != "" {
		err = runChild(*specFile)
	} else {
		err = run(*device, *python, *out, *commit, *autocast, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/train:", err)
		os.Exit(1)
	}
}

func run(device, python, out, commit, autocast string, rounds int) error {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	if rounds < 1 {
		return fmt.Errorf("-rounds: want at least 1, got %d", rounds)
	}
	bf16 := false
	if autocast != "" {
		dt, err := torch.ParseDType(autocast)
		if err != nil {
			return err
		}
		switch dt {
		case torch.Float32:
		case torch.BFloat16:
			bf16 = true
		default:
			return fmt.Errorf("-autocast: want bfloat16 (or float32, the default), got %q", autocast)
		}
	}
	if python, err = bench.ReferencePython(python); err != nil {
		return err
	}
	kind := "cpu"
	if dev.Type == torch.DeviceCUDA {
		kind = "gpu"
	}
	name := "train_" + kind
	if bf16 {
		name += "_bf16"
	}
	if out == "" {
		out = filepath.Join("bench", "results", name+".json")
	}
	cmd := "go run ./bench/train"
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "commit" {
			cmd += fmt.Sprintf(" -%s %s", f.Name, f.Value)
		}
	})
	precision, peaks, peakName := "float32", peakFLOPs, "float32"
	if bf16 {
		precision = "bf16 autocast (forward pass and loss under torch.autocast(device_type, dtype=torch.bfloat16) on both sides; parameters, gradients and AdamW state float32)"
		peaks, peakName = peakFLOPsBF16, "bfloat16"
	}
	method := fmt.Sprintf("LoRA r=16 alpha=32 on q,k,v,o,gate,up,down; AdamW; %s; random weights from config (smollm2_135m_instruct: the real SmolLM2-135M-Instruct weights, dequantized from its Q4_1 GGUF, saved as float32 safetensors that both sides load), random token batches with labels = ids; %d rounds alternating the two sides, each side in a fresh process per round; median step time over all timed steps of all rounds (each process: 2 warm-up steps, then the timed ones); tokens/s = batch x sequence / step time; peak RSS = the largest getrusage max RSS of a side's training processes; %d intra-op threads; Pioneer's step is training.Train's (training.Backward, then AdamW): on the CPU the batch's rows are shared out between that many worker threads, each running single-threaded kernels on its shard, gradients added up in a fixed order", precision, rounds, torch.NumThreads())
	if bf16 {
		method += "; MFU (GPU) = 6 x parameters x tokens/s over the dense bfloat16 tensor-core peak (H100/H200: 989 TFLOP/s; the float32 runs use the 67 TFLOP/s non-tensor-core float32 peak)"
	}
	list := models
	if dev.Type == torch.DeviceCUDA {
		list = append(list, gpuModels...)
	}
	for _, mdl := range list {
		method += fmt.Sprintf("; %s: batch %d x %d tokens, %d timed steps per process", mdl.name, mdl.batch, mdl.seq, mdl.steps)
	}
	r := bench.NewResult(name, cmd, method)
	if commit != "" {
		r.Commit = commit
	}
	for _, mdl := range list {
		sp := spec{Config: mdl.config, Device: dev.String(), Threads: torch.NumThreads(), R: 16, Alpha: 32, Targets: targets,
			Batch: mdl.batch, Seq: mdl.seq, Warmup: 2, Steps: mdl.steps}
		if mdl.weights != "" {
			dir, cfg, err := exportWeights(mdl.weights)
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			sp.Weights, sp.Config = dir, cfg
		}
		if bf16 {
			sp.Autocast = "bfloat16"
		}
		var ours, ref measured
		for round := 1; round <= rounds; round++ {
			fmt.Fprintf(os.Stderr, "%s: round %d/%d: Pioneer ...\n", mdl.name, round, rounds)
			var o measured
			if err := bench.RunPython(os.Args[0], "-child", []string{mdl.name, "-spec"}, sp, &o); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s: round %d/%d: PyTorch + PEFT ...\n", mdl.name, round, rounds)
			var p measured
			if err := bench.RunPython(python, filepath.Join("bench", "train", "reference.py"), nil, sp, &p); err != nil {
				return err
			}
			ours.add(o)
			ref.add(p)
		}
		refName := fmt.Sprintf("PyTorch %s + PEFT %s", ref.Torch, ref.PEFT)
		tok := float64(mdl.batch * mdl.seq)
		gt, rt := tok/bench.Median(ours.Seconds), tok/bench.Median(ref.Seconds)
		r.Add(mdl.name+"_tokens_per_s", "tokens/s", gt, &rt, refName, true)
		rr := ref.PeakRSSMB
		r.Add(mdl.name+"_peak_rss", "MB", ours.PeakRSSMB, &rr, refName, false)
		if peak, ok := peaks[gpuName()]; ok && dev.Type == torch.DeviceCUDA {
			// MFU as PaLM defines it: 6 x parameters x tokens/s over the device's peak.
			var cfg llama.Config
			raw, _ := json.Marshal(mdl.config)
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return err
			}
			cfg.Defaults()
			n := float64(cfg.ParamCount())
			gm, rm := 6*n*gt/peak, 6*n*rt/peak
			r.Add(mdl.name+"_mfu", "fraction", gm, &rm, refName+" (6N FLOPs per token over the "+peakName+" peak)", true)
		}
	}
	if err := r.Write(out); err != nil {
		return err
	}
	r.Table(os.Stdout)
	fmt.Println("wrote", out)
	return nil
}

// exportWeights writes an installed model as a float32 Hugging Face folder (safetensors,
// which both sides load) in a temporary folder, and returns it with its config.
func exportWeights(name string) (string, map[string]any, error) {
	p, err := model.Open(name, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return "", nil, err
	}
	defer p.Close()
	dir, err := os.MkdirTemp("", "pioneer-train-weights-*")
	if err != nil {
		return "", nil, err
	}
	if err := p.LM.Save(dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := model.CopyCompanionFiles(p.Dir, dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	cfg, err := model.ReadJSONFile(dir, "config.json", true)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, cfg, nil
}

func gpuName() string {
	out, err := exec.Command("nvidia-smi", "--query-gpu=name", "--format=csv,noheader").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.Split(string(out), "\n")[0])
}

// runChild trains one model with LoRA and prints its step times and peak RSS.
func runChild(specFile string) error {
	runtime.LockOSThread()
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var sp spec
	if err := json.Unmarshal(b, &sp); err != nil {
		return err
	}
	if sp.Threads > 0 {
		torch.SetNumThreads(sp.Threads)
	}
	dev, err := torch.ParseDevice(sp.Device)
	if err != nil {
		return err
	}
	var autocast torch.DType // 0: off
	if sp.Autocast != "" {
		if autocast, err = torch.ParseDType(sp.Autocast); err != nil {
			return err
		}
	}
	var cfg llama.Config
	raw, _ := json.Marshal(sp.Config)
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	var m model.CausalLM
	if sp.Weights != "" {
		m, err = model.Load(sp.Weights, dev, torch.Float32)
	} else {
		m, err = llama.New(cfg, dev, torch.Float32, 0)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	set, err := lora.Attach(m, lora.Config{R: sp.R, Alpha: sp.Alpha, TargetModules: lora.Targets{Names: sp.Targets}}, 1)
	if err != nil {
		return err
	}
	defer set.Close()
	tr := lora.Trainer{Model: m, Set: set}
	params := tr.Parameters()
	for _, p := range params {
		if err := p.SetRequiresGrad(true); err != nil {
			return err
		}
	}
	opt, err := training.NewAdamW(params, training.DefaultAdamW(1e-4))
	if err != nil {
		return err
	}
	defer opt.Close()
	B, T := sp.Batch, sp.Seq
	ids := make([]int64, B*T)
	targets := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64(3 + (i*7919)%(cfg.VocabSize-3))
	}
	for b := 0; b < B; b++ { // labels = ids, shifted: position t predicts token t+1
		for t := 0; t < T; t++ {
			targets[b*T+t] = -100
			if t+1 < T {
				targets[b*T+t] = ids[b*T+t+1]
			}
		}
	}
	// The step training.Train takes: training.Backward, on worker threads where Train would
	// start them (a CPU model whose loss allows it: one per libtorch thread), with this
	// thread's share (the optimizer) single-threaded as Train runs it then.
	workers, err := training.StartWorkers(tr, 0)
	if err != nil {
		return err
	}
	if workers != nil {
		defer workers.Close()
		torch.SetThreadNumThreads(1)
	}
	var out measured
	for step := 0; step < sp.Warmup+sp.Steps; step++ {
		if err := torch.Synchronize(dev); err != nil {
			return err
		}
		t0 := time.Now()
		_, _, err := training.Backward(tr, workers, ids, targets, B, T, 1, autocast)
		if err == nil {
			err = opt.Step(1e-4)
		}
		if err == nil {
			err = torch.ZeroGrad(params)
		}
		if err != nil {
			return err
		}
		if err := torch.Synchronize(dev); err != nil {
			return err
		}
		if step >= sp.Warmup {
			out.Seconds = append(out.Seconds, time.Since(t0).Seconds())
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	out.PeakRSSMB = float64(ru.Maxrss) / 1024
	return json.NewEncoder(os.Stdout).Encode(out)
}
