package llama

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
)

// linear is one projection: weight (out, in) and an optional bias (out).
type linear struct {
	w, b *torch.Tensor
}

func (l linear) apply(s *torch.Scope, x *torch.Tensor) *torch.Tensor { return s.Linear(x, l.w, l.b) }

type layer struct {
	inputNorm, postNorm *torch.Tensor // (C)
	q, k, v, o          linear        // q (Hq*D, C), k/v (Hkv*D, C), o (C, Hq*D)
	gate, up, down      linear        // gate/up (F, C), down (C, F)
}

// Model is a Llama-style causal language model whose parameters live on one device.
type Model struct {
	Config Config

	device torch.Device
	dtype  torch.DType
	params *torch.Scope             // owns every parameter
	named  map[string]*torch.Tensor // Hugging Face name -> parameter
	names  []string                 // sorted names

	embed  *torch.Tensor // (V, C)
	cos    *torch.Tensor // (1, 1, MaxPositionEmbeddings, D) rotary tables, not parameters
	sin    *torch.Tensor
	layers []layer
	norm   *torch.Tensor // (C)
	head   *torch.Tensor // (V, C); the embedding when tied
}

// shapes lists every parameter the configuration implies, by Hugging Face name.
func (c *Config) shapes() map[string][]int64 {
	C, F, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	qd := int64(c.NumAttentionHeads * c.HeadDim)
	kvd := int64(c.NumKeyValueHeads * c.HeadDim)
	m := map[string][]int64{
		"model.embed_tokens.weight": {V, C},
		"model.norm.weight":         {C},
	}
	if !c.TieWordEmbeddings {
		m["lm_head.weight"] = []int64{V, C}
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		m[p+"input_layernorm.weight"] = []int64{C}
		m[p+"post_attention_layernorm.weight"] = []int64{C}
		proj := map[string][2]int64{
			"self_attn.q_proj": {qd, C}, "self_attn.k_proj": {kvd, C}, "self_attn.v_proj": {kvd, C},
			"self_attn.o_proj": {C, qd}, "mlp.gate_proj": {F, C}, "mlp.up_proj": {F, C}, "mlp.down_proj": {C, F},
		}
		for name, sh := range proj {
			m[p+name+".weight"] = []int64{sh[0], sh[1]}
			bias := c.AttentionBias
			if strings.HasPrefix(name, "mlp.") {
				bias = c.MLPBias
			}
			if bias {
				m[p+name+".bias"] = []int64{sh[0]}
			}
		}
	}
	return m
}

// New creates a model with Hugging Face's initialisation: linear and embedding weights
// drawn from N(0, initializer_range²) with a generator seeded by seed, biases zero, norm
// weights one.
func New(cfg Config, dev torch.Device, dtype torch.DType, seed uint64) (*Model, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g, err := torch.NewGenerator(seed, torch.CPU)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	m := &Model{Config: cfg, device: dev, dtype: dtype, params: torch.NewScope(), named: map[string]*torch.Tensor{}}
	tmp := torch.NewScope()
	defer tmp.Close()
	shapes := cfg.shapes()
	names := sortedKeys(shapes)
	for _, name := range names {
		sh := shapes[name]
		var t *torch.Tensor
		switch {
		case strings.HasSuffix(name, "norm.weight"):
			t = m.params.Ones(sh, dtype, dev)
		case strings.HasSuffix(name, ".bias"):
			t = m.params.Zeros(sh, dtype, dev)
		default:
			// Draw on the CPU in float32 so a seed gives the same weights on every device.
			r := tmp.MulScalar(tmp.Randn(sh, torch.Float32, torch.CPU, g), cfg.InitializerRange)
			t = m.params.To(r, dtype, dev)
		}
		if err := firstErr(tmp, m.params); err != nil {
			m.Close()
			return nil, fmt.Errorf("llama: init %s: %w", name, err)
		}
		m.named[name] = t
	}
	if err := m.bind(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func firstErr(ss ...*torch.Scope) error {
	for _, s := range ss {
		if err := s.Err(); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// bind points the typed fields at the named parameters.
func (m *Model) bind() error {
	get := func(name string) *torch.Tensor { return m.named[name] }
	m.names = sortedKeys(m.named)
	m.embed = get("model.embed_tokens.weight")
	m.norm = get("model.norm.weight")
	m.head = get("lm_head.weight")
	if m.Config.TieWordEmbeddings {
		m.head = m.embed
	}
	m.layers = make([]layer, m.Config.NumHiddenLayers)
	for i := range m.layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		lin := func(n string) linear { return linear{w: get(p + n + ".weight"), b: get(p + n + ".bias")} }
		m.layers[i] = layer{
			inputNorm: get(p + "input_layernorm.weight"),
			postNorm:  get(p + "post_attention_layernorm.weight"),
			q:         lin("self_attn.q_proj"), k: lin("self_attn.k_proj"), v: lin("self_attn.v_proj"),
			o: lin("self_attn.o_proj"), gate: lin("mlp.gate_proj"), up: lin("mlp.up_proj"), down: lin("mlp.down_proj"),
		}
	}
	for name := range m.Config.shapes() {
		if m.named[name] == nil {
			return fmt.Errorf("llama: parameter %s missing", name)
		}
	}
	tmp := torch.NewScope()
	defer tmp.Close()
	cos, sin := m.ropeTables(tmp, int64(m.Config.MaxPositionEmbeddings))
	m.cos, m.sin = cos.MoveTo(m.params), sin.MoveTo(m.params)
	return tmp.Err()
}

// Close frees the parameters.
func (m *Model) Close() { m.params.Close() }

// Device is where the parameters live.
func (m *Model) Device() torch.Device { return m.device }

// DType is the parameters' element type.
func (m *Model) DType() torch.DType { return m.dtype }

// Parameters returns every parameter, ordered by name.
func (m *Model) Parameters() []*torch.Tensor {
	out := make([]*torch.Tensor, len(m.names))
	for i, n := range m.names {
		out[i] = m.named[n]
	}
	return out
}

// Named returns the parameter with the given Hugging Face name, or nil.
func (m *Model) Named(name string) *torch.Tensor { return m.named[name] }

// Names lists the parameter names in sorted order.
func (m *Model) Names() []string { return append([]string(nil), m.names...) }

// SetRequiresGrad marks every parameter as trainable (or not).
func (m *Model) SetRequiresGrad(on bool) error {
	for _, n := range m.names {
		if err := m.named[n].SetRequiresGrad(on); err != nil {
			return fmt.Errorf("llama: %s: %w", n, err)
		}
	}
	return nil
}

// ropeTables computes cos and sin tables (1, 1, T, D) for positions 0..T-1 in float32,
// as Hugging Face does (inv_freq = theta^(-2i/D)), cast to the model's dtype.
func (m *Model) ropeTables(s *torch.Scope, T int64) (cos, sin *torch.Tensor) {
	D := int64(m.Config.HeadDim)
	idx := s.Arange(0, float64(D), 2, torch.Int64, m.device)
	expo := s.DivScalar(s.To(idx, torch.Float32, m.device), float64(D))
	theta := s.Full(nil, m.Config.RopeTheta, torch.Float32, m.device)
	invFreq := s.Reciprocal(s.Pow(theta, expo))                                             // (D/2)
	pos := s.To(s.Arange(0, float64(T), 1, torch.Int64, m.device), torch.Float32, m.device) // (T)
	freqs := s.Mul(s.Reshape(pos, T, 1), s.Reshape(invFreq, 1, D/2))                        // (T, D/2)
	emb := s.Reshape(s.Cat([]*torch.Tensor{freqs, freqs}, -1), 1, 1, T, D)
	return s.To(s.Cos(emb), m.dtype, m.device), s.To(s.Sin(emb), m.dtype, m.device)
}

// Forward returns logits (B, T, V) for token ids (B, T) under a causal mask. Errors are
// recorded on s (check s.Err()).
func (m *Model) Forward(s *torch.Scope, ids *torch.Tensor) *torch.Tensor {
	shape := ids.Shape()
	if len(shape) != 2 {
		s.Fail(&torch.Error{Op: "llama forward", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", shape)})
		return nil
	}
	B, T := shape[0], shape[1]
	if T > int64(m.Config.MaxPositionEmbeddings) {
		s.Fail(&torch.Error{Op: "llama forward", Msg: fmt.Sprintf("sequence of %d tokens exceeds max_position_embeddings %d", T, m.Config.MaxPositionEmbeddings)})
		return nil
	}
	c := m.Config
	Hq, Hkv, D := int64(c.NumAttentionHeads), int64(c.NumKeyValueHeads), int64(c.HeadDim)
	cos := s.Slice(m.cos, 2, 0, T, 1) // (1, 1, T, D) views of the cached tables
	sin := s.Slice(m.sin, 2, 0, T, 1)
	x := s.Embedding(m.embed, ids) // (B, T, C)
	for i := range m.layers {
		l := &m.layers[i]
		h := s.RMSNorm(x, l.inputNorm, c.RMSNormEps)
		q := s.Transpose(s.Reshape(l.q.apply(s, h), B, T, Hq, D), 1, 2)  // (B, Hq, T, D)
		k := s.Transpose(s.Reshape(l.k.apply(s, h), B, T, Hkv, D), 1, 2) // (B, Hkv, T, D)
		v := s.Transpose(s.Reshape(l.v.apply(s, h), B, T, Hkv, D), 1, 2)
		q, k = s.Rope(q, cos, sin), s.Rope(k, cos, sin)
		a := s.Attention(q, k, v, torch.AttentionOptions{Causal: true})
		a = s.Reshape(s.Transpose(a, 1, 2), B, T, Hq*D) // (B, T, Hq*D)
		x = s.Add(x, l.o.apply(s, a))
		h = s.RMSNorm(x, l.postNorm, c.RMSNormEps)
		f := s.Mul(s.Silu(l.gate.apply(s, h)), l.up.apply(s, h)) // (B, T, F)
		x = s.Add(x, l.down.apply(s, f))
	}
	return s.Linear(s.RMSNorm(x, m.norm, c.RMSNormEps), m.head, nil)
}

// Loss is the mean next-token cross-entropy of Forward(ids) against targets (B, T);
// targets equal to -100 are ignored.
func (m *Model) Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor {
	logits := m.Forward(s, ids)
	V := int64(m.Config.VocabSize)
	return s.CrossEntropy(s.Reshape(logits, -1, V), s.Reshape(targets, -1), -100, torch.ReduceMean)
}

// Save writes the model as a Hugging Face folder: config.json and model.safetensors.
// Both files are replaced atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := m.Config
	cfg.TorchDType = m.dtype.String()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tensors := make(map[string]*torch.Tensor, len(m.named))
	for n, t := range m.named {
		tensors[n] = t
	}
	if err := torch.Save(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "config.json"), append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// ignoredWeights are tensors some checkpoints carry that the model recomputes.
func ignoredWeight(name string) bool {
	return strings.HasSuffix(name, "rotary_emb.inv_freq")
}

// weightFiles lists the safetensors files of a folder: model.safetensors, or the shards
// named by model.safetensors.index.json.
func weightFiles(dir string) ([]string, error) {
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil
	}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	b, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("llama: %s has neither model.safetensors nor model.safetensors.index.json", dir)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("%s: %w", indexPath, err)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range index.WeightMap {
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(dir, f))
		}
	}
	sort.Strings(files)
	return files, nil
}

// Load reads a Hugging Face model folder (config.json and safetensors weights) onto dev,
// converting the weights to dtype.
func Load(dir string, dev torch.Device, dtype torch.DType) (*Model, error) {
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	files, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	want := cfg.shapes()
	m := &Model{Config: cfg, device: dev, dtype: dtype, params: torch.NewScope(), named: map[string]*torch.Tensor{}}
	tmp := torch.NewScope()
	defer tmp.Close()
	for _, path := range files {
		if err := m.loadFile(path, want, tmp); err != nil {
			m.Close()
			return nil, err
		}
	}
	var missing []string
	for name := range want {
		if m.named[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		m.Close()
		return nil, fmt.Errorf("llama: %s: %d weights missing, e.g. %s", dir, len(missing), missing[0])
	}
	if err := m.bind(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Model) loadFile(path string, want map[string][]int64, tmp *torch.Scope) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, name := range f.Names() {
		info, data, err := f.Tensor(name)
		if err != nil {
			return err
		}
		sh, ok := want[name]
		if !ok {
			if ignoredWeight(name) || (name == "lm_head.weight" && m.Config.TieWordEmbeddings) {
				continue
			}
			return fmt.Errorf("llama: %s: unexpected weight %q for this config", path, name)
		}
		if !equalShape(info.Shape, sh) {
			return fmt.Errorf("llama: %s: weight %q has shape %v, config implies %v", path, name, info.Shape, sh)
		}
		dt, err := torch.DTypeFromSafetensors(info.DType)
		if err != nil {
			return fmt.Errorf("llama: %s: weight %q: %w", path, name, err)
		}
		raw := tmp.FromBytes(data, info.Shape, dt, torch.CPU)
		t := m.params.To(raw, m.dtype, m.device)
		if err := firstErr(tmp, m.params); err != nil {
			return fmt.Errorf("llama: %s: weight %q: %w", path, name, err)
		}
		raw.Free()
		m.named[name] = t
	}
	return nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
