// Command serve measures `pioneer serve` under load against what an edge user would run
// otherwise: llama.cpp's llama-server (built by scripts/build-llamacpp.sh) serving the
// same SmolLM2-135M-Instruct, on the same machine, in the same run. Pioneer serves the
// model as it loads it (the Q4_1 GGUF dequantized to float32); llama.cpp serves Pioneer's
// float32 GGUF export of the same weights (the same precision: the figures' reference)
// and the Q4_1 file itself (its own quantized kernels: second rows, _q4_1); a second
// Pioneer server decodes from quantized copies of the weights (pioneer serve --quantized:
// the Q4_1 file's projections exactly in 4 bits, its Q8_0 embedding in 8), compared with
// llama.cpp on the Q4_1 file (rows _quantized_vs_q4_1): each side's own quantized kernels
// on the same file's weights. Each server
// runs 16 slots (Pioneer: --max-batch 16; llama-server: -np 16 with continuous batching,
// 2 threads, no prompt cache, since the benchmark's prompts repeat). For 1, 4 and 16
// concurrent clients, each client sends /v1/completions requests back to back (greedy,
// max_tokens tokens); the figures are completion tokens per second over the phase and
// the median and 99th-percentile request latency, medians over rounds that alternate the
// servers' order. It writes bench/results/serve_cpu.json and prints a table.
//
//	bash scripts/fetch-smollm2.sh && bash scripts/build-llamacpp.sh && go run ./bench/serve
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/gguf"
	"github.com/pioneer-ai/pioneer/serve"
)

// prompts are plain continuations, so that both servers see the same text and rarely
// stop before max_tokens.
var prompts = []string{
	"Once upon a time, in a small village by the sea, there lived",
	"The history of the printing press begins",
	"Here is a short recipe for a vegetable soup:",
	"The three most important things to know about saving money are",
	"Dear customer, thank you for contacting us about your order.",
	"In a distant galaxy, the crew of the starship",
	"A good way to learn a new language is",
	"The weather report for tomorrow says",
}

func main() {
	if err := torch.SpinWorkers(); err != nil { // as pioneer serve does
		fmt.Fprintln(os.Stderr, "bench/serve: warning:", err)
	}
	rounds := flag.Int("rounds", 3, "rounds; each runs every server at every concurrency, the order alternating")
	maxTokens := flag.Int("max-tokens", 64, "max_tokens of each request")
	perClient := flag.Int("requests", 2, "requests per client at 4 and 16 clients (at 1 client: 4)")
	bin := flag.String("llamacpp", "", "llama.cpp bin folder (default: scripts/build-llamacpp.sh's)")
	out := flag.String("out", "bench/results/serve_cpu.json", "result file")
	flag.Parse()
	if *bin == "" {
		*bin = bench.LlamaCppBin()
	}
	if err := run(*bin, *out, *rounds, *maxTokens, *perClient); err != nil {
		fmt.Fprintln(os.Stderr, "bench/serve:", err)
		os.Exit(1)
	}
}

// stats is one load phase of one server.
type stats struct {
	tokensPerS, p50, p99 float64 // tokens/s, latencies in ms
	tokens, requests     int
	failed               int
	wall                 float64 // seconds
	busy, rows           float64 // Pioneer: share of the phase spent in decoding steps, requests per step
}

type target struct {
	name, url, model string
	llama            bool
}

func run(bin, out string, rounds, maxTokens, perClient int) error {
	serverBin := filepath.Join(bin, "llama-server")
	if _, err := os.Stat(serverBin); err != nil {
		return fmt.Errorf("%v: build llama.cpp with bash scripts/build-llamacpp.sh", err)
	}
	q41, err := data.InstalledModels[data.SmolLM2].Path()
	if err != nil {
		return err
	}
	p, err := model.Open(data.SmolLM2, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return err
	}
	defer p.Close()
	tmp, err := os.MkdirTemp("", "pioneer-bench-serve-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	f32 := filepath.Join(tmp, "smollm2-f32.gguf")
	if err := model.ExportGGUF(p.LM, p.Dir, f32, gguf.F32); err != nil {
		return err
	}

	// The quantized server decodes from quantized copies of the same weights (which hold
	// the Q4_1 file's exactly): a model of its own, since the copies attach to its
	// projections.
	pq, err := model.Open(data.SmolLM2, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return err
	}
	defer pq.Close()
	if _, err := model.Quantize(pq.LM); err != nil {
		return err
	}
	var targets []target
	for _, side := range []struct {
		name      string
		p         *model.Pretrained
		quantized bool
	}{{"pioneer", p, false}, {"pioneer_quantized", pq, true}} {
		s, err := serve.New(serve.Config{Model: side.p, ModelName: "smollm2", MaxBatch: 16, MaxQueue: 64, MaxNewTokens: maxTokens, Quantized: side.quantized})
		if err != nil {
			return err
		}
		defer s.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: s.Handler()}
		go hs.Serve(ln)
		defer hs.Close()
		targets = append(targets, target{name: side.name, url: "http://" + ln.Addr().String(), model: "smollm2"})
	}
	for _, f := range []struct{ name, file string }{{"llamacpp", f32}, {"llamacpp_q4_1", q41}} {
		// 16 slots of 256 positions each: the longest prompt and max_tokens fit
		ls, err := bench.StartLlamaServer(serverBin, f.file, "-t", "2", "-np", "16", "-c", fmt.Sprint(16*256), "-cb")
		if err != nil {
			return err
		}
		defer ls.Stop()
		targets = append(targets, target{name: f.name, url: ls.URL, model: "smollm2", llama: true})
	}
	for _, t := range targets { // warm-up: one request each, not measured
		if st := load(t, 1, 1, maxTokens); st.failed > 0 {
			return fmt.Errorf("%s: the warm-up request failed", t.name)
		}
	}
	clients := []int{1, 4, 16}
	all := map[string]map[int][]stats{}
	for _, t := range targets {
		all[t.name] = map[int][]stats{}
	}
	for r := 0; r < rounds; r++ {
		for _, c := range clients {
			n := c * perClient
			if c == 1 {
				n = 4
			}
			for k := range targets {
				t := targets[(k+r)%len(targets)]
				fmt.Fprintf(os.Stderr, "round %d/%d, %2d clients, %d requests: %s ...\n", r+1, rounds, c, n, t.name)
				var before map[string]float64
				if !t.llama {
					before = scrape(t.url)
				}
				st := load(t, c, n, maxTokens)
				if !t.llama { // how busy the decoding loop was, and how full its batches
					after := scrape(t.url)
					steps := after["pioneer_batches_total"] - before["pioneer_batches_total"]
					st.busy = (after["pioneer_step_seconds_total"] - before["pioneer_step_seconds_total"]) / st.wall
					st.rows = (after["pioneer_batch_rows_total"] - before["pioneer_batch_rows_total"]) / max(steps, 1)
					fmt.Fprintf(os.Stderr, "  decoding busy %.0f %% of the phase, %.1f requests per step on average\n", 100*st.busy, st.rows)
				}
				fmt.Fprintf(os.Stderr, "  %.1f tokens/s, p50 %.0f ms, p99 %.0f ms, %d tokens, %d failed\n", st.tokensPerS, st.p50, st.p99, st.tokens, st.failed)
				all[t.name][c] = append(all[t.name][c], st)
			}
		}
	}

	res := bench.NewResult("serve_cpu", "go run ./bench/serve", fmt.Sprintf(
		"SmolLM2-135M-Instruct served over HTTP on loopback by pioneer serve (float32, the Q4_1 GGUF dequantized; --max-batch 16, continuous batching), "+
			"and by pioneer serve --quantized (rows ending _quantized_vs_q4_1: decoding from copies of the weights that hold the Q4_1 file's exactly, 4-bit projections and an 8-bit output projection, activations quantized by blocks of 32 as llama.cpp does, each decoding step's layers in one call; prompts read in float32) "+
			"and by llama.cpp 0.3.36's llama-server (2 threads, -np 16, -cb, cache_prompt false) on Pioneer's float32 GGUF export of the same weights "+
			"(the reference of each figure) and on the Q4_1 file (rows ending _q4_1 and _quantized_vs_q4_1). POST /v1/completions, greedy, max_tokens %d, %d prompts cycled; "+
			"c clients send requests back to back: 4 requests at 1 client, %d per client at 4 and 16. tokens_per_s = completion tokens (usage) over the phase's wall time; "+
			"latency per request, p99 over a phase's few requests is its slowest. Medians over %d rounds, the servers' order rotating each round; one warm-up request each first.",
		maxTokens, len(prompts), perClient, rounds))
	failed, requests := 0, 0
	for _, c := range clients {
		for _, side := range []string{"pioneer", "pioneer_quantized"} {
			for _, st := range all[side][c] {
				failed += st.failed
				requests += st.requests
			}
		}
	}
	// Figures compare one Pioneer server with one llama.cpp server: float32 with f32 (no
	// suffix) and with the Q4_1 file, and each side's quantized weights of the same file
	// (Pioneer's copies hold the Q4_1 weights exactly; activations quantized by block).
	for _, cmp := range []struct{ mine, ref, refName, suffix string }{
		{"pioneer", "llamacpp", "llama.cpp llama-server, f32 GGUF", ""},
		{"pioneer", "llamacpp_q4_1", "llama.cpp llama-server, Q4_1 GGUF", "_q4_1"},
		{"pioneer_quantized", "llamacpp_q4_1", "llama.cpp llama-server, Q4_1 GGUF", "_quantized_vs_q4_1"},
	} {
		for _, c := range clients {
			mine, theirs := median(all[cmp.mine][c]), median(all[cmp.ref][c])
			res.Add(fmt.Sprintf("c%d_tokens_per_s%s", c, cmp.suffix), "tokens/s", mine.tokensPerS, &theirs.tokensPerS, cmp.refName, true)
			res.Add(fmt.Sprintf("c%d_p50_latency_ms%s", c, cmp.suffix), "ms", mine.p50, &theirs.p50, cmp.refName, false)
			res.Add(fmt.Sprintf("c%d_p99_latency_ms%s", c, cmp.suffix), "ms", mine.p99, &theirs.p99, cmp.refName, false)
			res.Add(fmt.Sprintf("c%d_tokens_per_request%s", c, cmp.suffix), "tokens", float64(mine.tokens)/float64(mine.requests),
				ptr(float64(theirs.tokens)/float64(theirs.requests)), cmp.refName, true)
		}
	}
	for _, c := range clients {
		st := median(all["pioneer"][c])
		res.Add(fmt.Sprintf("c%d_decoding_busy", c), "fraction", st.busy, nil, "", false)
		res.Figures[len(res.Figures)-1].Note = "Pioneer's share of the phase in decoding steps (prefills included), from /metrics"
		res.Add(fmt.Sprintf("c%d_requests_per_step", c), "requests", st.rows, nil, "", true)
	}
	refFailed := 0
	for _, c := range clients {
		for _, st := range all["llamacpp"][c] {
			refFailed += st.failed
		}
	}
	res.Add("failed_requests", "requests", float64(failed), ptr(float64(refFailed)), "llama.cpp llama-server, f32 GGUF", false)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("Pioneer's over all %d measured requests of its float32 and quantized servers; llama.cpp's of its f32 server", requests)
	if err := res.Write(out); err != nil {
		return err
	}
	res.Table(os.Stdout)
	return nil
}

func ptr(v float64) *float64 { return &v }

// median takes, figure by figure, the median over rounds.
func median(sts []stats) stats {
	pick := func(f func(stats) float64) float64 {
		v := make([]float64, len(sts))
		for i, st := range sts {
			v[i] = f(st)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := stats{tokensPerS: pick(func(s stats) float64 { return s.tokensPerS }), p50: pick(func(s stats) float64 { return s.p50 }),
		p99: pick(func(s stats) float64 { return s.p99 }), busy: pick(func(s stats) float64 { return s.busy }),
		rows: pick(func(s stats) float64 { return s.rows })}
	for _, st := range sts {
		out.tokens += st.tokens
		out.requests += st.requests
		out.failed += st.failed
	}
	return out
}

// load runs c clients sending n requests in all, back to back.
func load(t target, c, n, maxTokens int) stats {
	var mu sync.Mutex
	var lat []float64
	st := stats{requests: n}
	next := 0
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				toks, err := complete(t, prompts[i%len(prompts)], maxTokens)
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					st.failed++
					fmt.Fprintf(os.Stderr, "  %s: %v\n", t.name, err)
				} else {
					st.tokens += toks
					lat = append(lat, ms)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.wall = time.Since(start).Seconds()
	st.tokensPerS = float64(st.tokens) / st.wall
	slices.Sort(lat)
	if len(lat) > 0 {
		st.p50 = percentile(lat, 0.5)
		st.p99 = percentile(lat, 0.99)
	}
	return st
}

// percentile of sorted values, by linear interpolation between the nearest ranks.
func percentile(sorted []float64, q float64) float64 {
	x := q * float64(len(sorted)-1)
	i := int(x)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (x-float64(i))*(sorted[i+1]-sorted[i])
}

// complete sends one greedy completion request and returns its completion tokens.
func complete(t target, prompt string, maxTokens int) (int, error) {
	req := map[string]any{"model": t.model, "prompt": prompt, "max_tokens": maxTokens, "temperature": 0}
	if t.llama {
		req["cache_prompt"] = false
	}
	b, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	resp, err := http.Post(t.url+"/v1/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bench.Tail(string(body), 300))
	}
	var cm struct {
		Usage struct {
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &cm); err != nil {
		return 0, err
	}
	if cm.Usage.Completion == 0 {
		return 0, errors.New("an answer without completion tokens")
	}
	return cm.Usage.Completion, nil
}

// scrape reads a Prometheus text page's unlabelled samples.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	r, err := http.Get(url + "/metrics")
	if err != nil {
		return out
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		var name string
		var v float64
		if n, _ := fmt.Sscanf(l, "%s %g", &name, &v); n == 2 && !strings.HasPrefix(name, "#") {
			out[name] = v
		}
	}
	return out
}
