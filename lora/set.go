package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/gguf"
)

// prefix is what PEFT puts before a module path in adapter_model.safetensors.
const prefix = "base_model.model."

// PEFT's file names in an adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// Set is one named adapter attached to every targeted projection of a model.
type Set struct {
	Config   Config
	Adapters []*Adapter // sorted by path
	Training bool       // dropout applies only while training
	scope    *torch.Scope
	gen      *torch.Generator
	merged   bool
}

// Attach creates adapters on every projection cfg targets, initialised as PEFT does by
// default: A from Kaiming-uniform (bound 1/√in), B zero, so the model's output is
// unchanged until training. The generator is seeded by seed.
func Attach(m model.CausalLM, cfg Config, seed uint64) (*Set, error) {
	return attach(m, cfg, seed, nil, true)
}

// attach builds the set; with weights != nil, A and B come from there (PEFT names).
func attach(m model.CausalLM, cfg Config, seed uint64, weights map[string]*torch.Tensor, install bool) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dev := m.Device()
	set := &Set{Config: cfg, scope: torch.NewScope()}
	var err error
	if set.gen, err = torch.NewGenerator(seed, dev); err != nil {
		return nil, err
	}
	init, err := torch.NewGenerator(seed, torch.CPU)
	if err != nil {
		set.Close()
		return nil, err
	}
	defer init.Close()
	linears := m.Linears()
	paths := make([]string, 0, len(linears))
	for p := range linears {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tmp := torch.NewScope()
	defer tmp.Close()
	for _, p := range paths {
		if !cfg.targets(p) {
			continue
		}
		l := linears[p]
		if install && l.Adapter != nil {
			set.Close()
			return nil, fmt.Errorf("lora: %s already has an adapter", p)
		}
		in, out := l.Dims()
		r, alpha := cfg.rankAlpha(p)
		a := &Adapter{Path: p, Rank: r, Scale: cfg.Scale(r, alpha), linear: l, set: set}
		dt := m.DType()
		if weights != nil {
			a.A, a.B = weights[prefix+p+".lora_A.weight"], weights[prefix+p+".lora_B.weight"]
			if a.A == nil || a.B == nil {
				set.Close()
				return nil, fmt.Errorf("lora: adapter weights for %s missing", p)
			}
			if sa, sb := a.A.Shape(), a.B.Shape(); len(sa) != 2 || len(sb) != 2 || sa[1] != in || sb[0] != out || sa[0] != sb[1] {
				set.Close()
				return nil, fmt.Errorf("lora: %s: lora_A %v and lora_B %v do not fit a (%d -> %d) projection", p, sa, sb, in, out)
			}
			a.Rank = int(a.A.Shape()[0])
			a.Scale = cfg.Scale(a.Rank, alpha)
			a.A = set.scope.To(a.A, dt, dev)
			a.B = set.scope.To(a.B, dt, dev)
		} else {
			if int64(r) > min(in, out) { // B·A has rank at most min(in, out): more only costs memory
				set.Close()
				return nil, fmt.Errorf("lora: rank %d on %s, a (%d -> %d) projection: the rank can be at most %d", r, p, in, out, min(in, out))
			}
			bound := 1 / math.Sqrt(float64(in)) // kaiming_uniform_(a=√5): √(6/((1+5)·in))
			u := tmp.Rand([]int64{int64(r), in}, torch.Float32, torch.CPU, init)
			a.A = set.scope.To(tmp.MulScalar(tmp.AddScalar(tmp.MulScalar(u, 2), -1), bound), dt, dev)
			a.B = set.scope.Zeros([]int64{out, int64(r)}, dt, dev)
		}
		if err := torch.FirstErr(tmp, set.scope); err != nil {
			set.Close()
			return nil, fmt.Errorf("lora: %s: %w", p, err)
		}
		set.Adapters = append(set.Adapters, a)
	}
	if len(set.Adapters) == 0 {
		set.Close()
		return nil, fmt.Errorf("lora: target_modules %s match no projection of the model (e.g. %s)",
			cfg.TargetModules.describe(), strings.Join(first(paths, 3), ", "))
	}
	if install {
		for _, a := range set.Adapters {
			a.linear.Adapter = a
		}
	}
	return set, nil
}

func (t Targets) describe() string {
	if t.Regex != "" {
		return fmt.Sprintf("%q", t.Regex)
	}
	return fmt.Sprint(t.Names)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Parameters returns every A and B, ordered as Names.
func (set *Set) Parameters() []*torch.Tensor {
	var out []*torch.Tensor
	for _, a := range set.Adapters {
		out = append(out, a.A, a.B)
	}
	return out
}

// Summary describes the set for people: "LoRA r=16 alpha=32 on 42 projections (1,234,567
// parameters)".
func (set *Set) Summary() string {
	var n int64
	for _, p := range set.Parameters() {
		n += p.Numel()
	}
	return fmt.Sprintf("LoRA r=%d alpha=%g on %d projections (%s parameters)", set.Config.R, set.Config.Alpha, len(set.Adapters), format.Commas(n))
}

// Names are PEFT's tensor names for Parameters.
func (set *Set) Names() []string {
	var out []string
	for _, a := range set.Adapters {
		out = append(out, prefix+a.Path+".lora_A.weight", prefix+a.Path+".lora_B.weight")
	}
	return out
}

// Close detaches the adapters from the model (unmerging first if merged) and frees them.
func (set *Set) Close() {
	if set.merged {
		_ = set.Unmerge()
	}
	for _, a := range set.Adapters {
		if a.linear.Adapter == a {
			a.linear.Adapter = nil
		}
	}
	set.gen.Close()
	set.scope.Close()
}

// Save writes adapter_config.json and adapter_model.safetensors in PEFT's format.
func (set *Set) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tensors := map[string]*torch.Tensor{}
	names := set.Names()
	for i, p := range set.Parameters() {
		tensors[names[i]] = p
	}
	if err := torch.Save(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	c := set.Config
	c.PeftType, c.TaskType, c.InferenceMode = "LORA", "CAUSAL_LM", true
	if c.Bias == "" {
		c.Bias = "none"
	}
	if c.RankPattern == nil {
		c.RankPattern = map[string]int{}
	}
	if c.AlphaPattern == nil {
		c.AlphaPattern = map[string]float64{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, ConfigFile), append(b, '\n'))
}

// Load reads a PEFT LoRA adapter folder and attaches it to m.
func Load(dir string, m model.CausalLM) (*Set, error) { return load(dir, m, true) }

// LoadDetached reads an adapter for m without attaching it: for Mix, which serves several
// adapters at once.
func LoadDetached(dir string, m model.CausalLM) (*Set, error) { return load(dir, m, false) }

func load(dir string, m model.CausalLM, install bool) (*Set, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	s := torch.NewScope()
	defer s.Close()
	weights, _, err := s.Load(filepath.Join(dir, WeightsFile), torch.CPU)
	if err != nil {
		return nil, err
	}
	for name := range weights {
		if !strings.HasPrefix(name, prefix) || !(strings.HasSuffix(name, ".lora_A.weight") || strings.HasSuffix(name, ".lora_B.weight")) {
			return nil, fmt.Errorf("lora: %s: unexpected tensor %q (only lora_A/lora_B weights are supported)", dir, name)
		}
	}
	set, err := attach(m, cfg, 0, weights, install)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if got := 2 * len(set.Adapters); got != len(weights) {
		set.Close()
		return nil, fmt.Errorf("lora: %s: file has %d tensors but the config targets %d modules of this model", dir, len(weights), len(set.Adapters))
	}
	return set, nil
}

// delta is scale · B·A laid out like the projection's weight.
func (a *Adapter) delta(s *torch.Scope) *torch.Tensor {
	d := s.MulScalar(s.Matmul(a.B, a.A), a.Scale) // (out, in)
	if a.linear.Conv1D {
		d = s.Transpose(d, 0, 1)
	}
	return s.To(d, a.linear.W.DType(), a.linear.W.Device())
}

// Merge adds every adapter into its projection's weight and detaches it, so inference
// costs nothing extra. It refuses (and changes nothing) if any merged weight would be
// non-finite.
func (set *Set) Merge() error { return set.apply(1) }

// Unmerge subtracts merged adapters again and re-attaches them.
func (set *Set) Unmerge() error { return set.apply(-1) }

func (set *Set) apply(sign float64) error {
	if (sign > 0) == set.merged {
		return nil
	}
	return torch.NoGrad(func() error {
		s := torch.NewScope()
		defer s.Close()
		next := make([]*torch.Tensor, len(set.Adapters))
		for i, a := range set.Adapters {
			w := s.Add(a.linear.W, s.MulScalar(a.delta(s), sign))
			ok, err := s.Amin(s.To(s.IsFinite(w), torch.Int64, torch.CPU), nil, false).Item()
			if err == nil {
				err = s.Err()
			}
			if err != nil {
				return fmt.Errorf("lora: merge %s: %w", a.Path, err)
			}
			if ok == 0 {
				return fmt.Errorf("lora: merging %s would make its weight non-finite; nothing was changed", a.Path)
			}
			next[i] = w
		}
		for i, a := range set.Adapters {
			if err := a.linear.W.CopyFrom(next[i]); err != nil {
				return err
			}
			if sign > 0 {
				a.linear.Adapter = nil
			} else {
				a.linear.Adapter = a
			}
		}
		set.merged = sign > 0
		return nil
	})
}

// ExportGGUF writes the set as a GGUF LoRA adapter (llama.cpp's --lora, ollama's ADAPTER)
// for a base model whose config.json is in baseDir.
func (set *Set) ExportGGUF(baseDir, path string) error {
	cfg, err := model.ReadJSONFile(baseDir, "config.json", true)
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	var pairs []gguf.LoRAPair
	for _, a := range set.Adapters {
		sc := torch.NewScope()
		av, err := sc.To(a.A, torch.Float32, torch.CPU).Float32s()
		if err != nil {
			sc.Close()
			return fmt.Errorf("lora: %s: %w", a.Path, err)
		}
		bv, err := sc.To(a.B, torch.Float32, torch.CPU).Float32s()
		sc.Close()
		if err != nil {
			return fmt.Errorf("lora: %s: %w", a.Path, err)
		}
		pairs = append(pairs, gguf.LoRAPair{Module: a.Path, A: av, AShape: a.A.Shape(), B: bv, BShape: a.B.Shape(), Scale: a.Scale})
	}
	b, err := gguf.ExportLoRA(cfg, set.Config.Alpha, pairs)
	if err != nil {
		return err
	}
	return b.WriteFile(path)
}
