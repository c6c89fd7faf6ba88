// Command load measures how long model.Open takes on SmolLM2-135M-Instruct read from its
// GGUF file (Q8_0 embedding, Q4_1 projections: dequantized to float32 on every load)
// against the same float32 weights from a safetensors folder (written once by this
// command with model.Save, as pioneer export does). The two alternate within each round
// after a warm-up round (so both files are in the page cache and the GGUF's companion
// folder exists); the figure is the median over the rounds. It writes
// bench/results/load_cpu.json and prints a table.
//
//	bash scripts/fetch-smollm2.sh && go run ./bench/load
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

func main() {
	rounds := flag.Int("rounds", 5, "timed rounds, each loading both once")
	out := flag.String("out", "bench/results/load_cpu.json", "result file")
	flag.Parse()
	if err := run(*rounds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
}

func run(rounds int, out string) error {
	gguf, err := model.Resolve(data.SmolLM2)
	if err != nil {
		return err
	}
	st, err := os.MkdirTemp("", "pioneer-load-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(st)
	m, err := model.Load(gguf, torch.CPU, torch.Float32)
	if err != nil {
		return err
	}
	err = m.Save(st)
	m.Close()
	if err != nil {
		return err
	}
	if err := model.CopyCompanionFiles(gguf, st); err != nil {
		return err
	}
	load := func(dir string) (time.Duration, error) {
		t0 := time.Now()
		p, err := model.Open(dir, model.OpenOptions{Device: torch.CPU})
		if err != nil {
			return 0, err
		}
		d := time.Since(t0)
		p.Close()
		return d, nil
	}
	var tg, ts []float64
	for r := -1; r < rounds; r++ {
		g, err := load(gguf)
		if err != nil {
			return err
		}
		s, err := load(st)
		if err != nil {
			return err
		}
		if r >= 0 {
			tg, ts = append(tg, g.Seconds()), append(ts, s.Seconds())
		}
		fmt.Fprintf(os.Stderr, "round %d: GGUF %.3f s, safetensors %.3f s\n", r, g.Seconds(), s.Seconds())
	}
	res := bench.NewResult("load_cpu", "go run ./bench/load",
		fmt.Sprintf("model.Open(...) to float32 on the CPU, then Close; GGUF (%s) and a float32 safetensors copy of the same weights alternate; median of %d rounds after a warm-up round (files in the page cache)",
			filepath.Base(mustTarget(gguf)), rounds))
	ref := bench.Median(ts)
	res.Add("smollm2_135m_instruct_load_s", "s", bench.Median(tg), &ref, "the same weights as float32 safetensors", false)
	res.Table(os.Stdout)
	return res.Write(out)
}

// mustTarget is the GGUF file a companion folder's weights link points to.
func mustTarget(dir string) string {
	t, err := os.Readlink(filepath.Join(dir, model.GGUFWeights))
	if err != nil {
		return dir
	}
	return t
}
