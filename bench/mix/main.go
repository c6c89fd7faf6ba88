// Command mix measures a forward pass of a batch whose rows use different LoRA adapters
// (lora.Mix: each adapter runs on the rows that use it, gathered and added back) against
// the masked way (every adapter runs over the whole batch and a 0/1 row mask keeps its
// rows), on a random model of SmolLM2-135M's shape with adapters of rank 16 on every
// projection. The two sides alternate within each round; the figure is the median time of
// a forward pass, and the outputs of the two are compared. It writes
// bench/results/mix_<cpu|gpu>.json and prints a table.
//
//	go run ./bench/mix
//	go run ./bench/mix -device cuda
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/llama"
)

func main() {
	device := flag.String("device", "cpu", "cpu or cuda")
	rounds := flag.Int("rounds", 5, "rounds, each timing both sides once per batch layout")
	batch := flag.Int("batch", 16, "rows per batch")
	seq := flag.Int("seq", 64, "tokens per row")
	out := flag.String("out", "", "result file (default bench/results/mix_<cpu|gpu>.json)")
	flag.Parse()
	if err := run(*device, *rounds, *batch, *seq, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/mix:", err)
		os.Exit(1)
	}
}

// masked is the adapter the comparison runs: every set's term over the whole batch,
// multiplied by a 0/1 mask of its rows.
type masked struct {
	members []*lora.Adapter
	rows    []int
	dev     torch.Device
}

func (m *masked) Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	shape := x.Shape()
	var out *torch.Tensor
	for k, a := range m.members {
		mask := make([]float32, shape[0])
		any := false
		for r, want := range m.rows {
			if want == k {
				mask[r], any = 1, true
			}
		}
		if !any {
			continue
		}
		view := make([]int64, len(shape))
		for i := range view {
			view[i] = 1
		}
		view[0] = shape[0]
		d := s.Mul(a.Delta(s, x), s.To(s.Float32s(mask, view, torch.CPU), x.DType(), m.dev))
		if out == nil {
			out = d
		} else {
			out = s.Add(out, d)
		}
	}
	return out
}

func run(device string, rounds, B, T int, out string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	cfg := llama.Config{ // SmolLM2-135M's shape
		VocabSize: 49152, HiddenSize: 576, IntermediateSize: 1536, NumHiddenLayers: 30, NumAttentionHeads: 9,
		NumKeyValueHeads: 3, MaxPositionEmbeddings: 2048, RMSNormEps: 1e-5, RopeTheta: 100000, TieWordEmbeddings: true,
		InitializerRange: 0.02,
	}
	m, err := llama.New(cfg, dev, torch.Float32, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	const adapters = 4
	targets := lora.Targets{Names: []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}
	// The adapters are made one at a time (a projection takes one attached adapter),
	// saved, and loaded back detached, as Mix wants them.
	sets := make([]*lora.Set, adapters)
	dir, err := os.MkdirTemp("", "pioneer-bench-mix-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for k := range adapters {
		set, err := lora.Attach(m, lora.Config{R: 16, Alpha: 32, TargetModules: targets}, uint64(k+1))
		if err != nil {
			return err
		}
		if err := randomizeB(set, uint64(100+k)); err != nil {
			return err
		}
		path := fmt.Sprintf("%s/a%d", dir, k)
		err = set.Save(path)
		set.Close()
		if err != nil {
			return err
		}
		if sets[k], err = lora.LoadDetached(path, m); err != nil {
			return err
		}
		defer sets[k].Close()
	}
	layouts := map[string][]int{
		"one_adapter": fill(B, func(int) int { return 0 }),
		"4_adapters":  fill(B, func(r int) int { return r % adapters }),
		"4_adapters_and_base_rows": fill(B, func(r int) int {
			if r%2 == 1 {
				return -1
			}
			return (r / 2) % adapters
		}),
	}
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % cfg.VocabSize)
	}
	forward := func() ([]float32, time.Duration, error) {
		s := torch.NewScope()
		defer s.Close()
		var logits []float32
		start := time.Now()
		err := torch.NoGrad(func() error {
			l := m.Forward(s, s.Int64s(ids, []int64{int64(B), int64(T)}, dev))
			last := s.Select(l, 1, int64(T-1)) // (B, V): enough to compare, small to copy
			if err := torch.Synchronize(dev); err != nil {
				return err
			}
			var err error
			logits, err = s.To(last, torch.Float32, torch.CPU).Float32s()
			return err
		})
		return logits, time.Since(start), err
	}
	res := bench.NewResult("mix_"+map[bool]string{true: "gpu", false: "cpu"}[dev.Type == torch.DeviceCUDA],
		"go run ./bench/mix"+map[bool]string{true: " -device cuda", false: ""}[dev.Type == torch.DeviceCUDA],
		fmt.Sprintf("A forward pass (no gradients) of %d rows x %d tokens through a random model of SmolLM2-135M's shape (float32) "+
			"with %d LoRA adapters of rank 16 on every projection, rows assigned per layout; pioneer = lora.Mix (each adapter on its "+
			"rows, gathered and added back), reference = every adapter over the whole batch with a 0/1 row mask. One warm-up per side, "+
			"then %d rounds alternating the two sides; median seconds per pass. max_abs_diff compares the two sides' last-position logits, adapter_effect the adapters' side with the base model alone.",
			B, T, adapters, rounds))
	for _, name := range []string{"one_adapter", "4_adapters", "4_adapters_and_base_rows"} {
		rows := layouts[name]
		mx, err := lora.Mix(m, sets...)
		if err != nil {
			return err
		}
		if err := mx.SetRows(rows); err != nil {
			return err
		}
		linears := m.Linears()
		gathered := map[string]model.Adapter{}
		for p, l := range linears {
			if l.Adapter != nil {
				gathered[p] = l.Adapter
			}
		}
		useMasked := func(on bool) {
			for p, a := range gathered {
				if on {
					var members []*lora.Adapter
					for _, set := range sets {
						members = append(members, adapterAt(set, p))
					}
					linears[p].Adapter = &masked{members: members, rows: rows, dev: dev}
				} else {
					linears[p].Adapter = a
				}
			}
		}
		var tg, tm []float64
		var lg, lm []float32
		for r := -1; r < rounds; r++ { // round -1 is the warm-up
			useMasked(false)
			a, d, err := forward()
			if err != nil {
				return err
			}
			useMasked(true)
			b, e, err := forward()
			if err != nil {
				return err
			}
			if r >= 0 {
				tg, tm = append(tg, d.Seconds()), append(tm, e.Seconds())
			}
			lg, lm = a, b
		}
		// The base model alone, to show the adapters change the output (a zero
		// difference between the sides would mean nothing otherwise).
		for p := range gathered {
			linears[p].Adapter = nil
		}
		base, _, err := forward()
		if err != nil {
			return err
		}
		useMasked(false)
		mx.Close()
		effect := maxAbsDiff(base, lg)
		if effect == 0 {
			return fmt.Errorf("%s: the adapters do not change the logits", name)
		}
		res.Add("adapter_effect_"+name, "logit", effect, nil, "", false)
		ref := bench.Median(tm)
		res.Add("forward_"+name, "s", bench.Median(tg), &ref, "every adapter over the whole batch, masked", false)
		diff := maxAbsDiff(lg, lm)
		res.Add("max_abs_diff_"+name, "logit", diff, nil, "", false)
		fmt.Fprintf(os.Stderr, "%s: gathered %.3f s, masked %.3f s, max |diff| %.2g, adapters' effect %.2g\n", name, bench.Median(tg), ref, diff, effect)
	}
	if out == "" {
		out = "bench/results/" + res.Benchmark + ".json"
	}
	res.Table(os.Stdout)
	return res.Write(out)
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func fill(n int, f func(int) int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// adapterAt is a set's adapter on the projection at path (nil when it has none).
func adapterAt(set *lora.Set, path string) *lora.Adapter {
	for _, a := range set.Adapters {
		if a.Path == path {
			return a
		}
	}
	return nil
}

// randomizeB fills every B with small seeded values, so adapters change the output.
func randomizeB(set *lora.Set, seed uint64) error {
	g, err := torch.NewGenerator(seed, torch.CPU)
	if err != nil {
		return err
	}
	defer g.Close()
	return torch.NoGrad(func() error {
		for _, a := range set.Adapters {
			s := torch.NewScope()
			v := s.MulScalar(s.Randn(a.B.Shape(), torch.Float32, torch.CPU, g), 0.01)
			err := a.B.CopyFrom(v)
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
