package llama

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
)

func init() {
	for _, arch := range []string{"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"} {
		model.Register(arch, func(dir string, dev torch.Device, dtype torch.DType) (model.CausalLM, error) {
			return Load(dir, dev, dtype)
		}, func(dir string) (model.Info, error) {
			cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
			if err != nil {
				return model.Info{}, err
			}
			return cfg.info(), nil
		})
	}
}

var _ model.CausalLM = (*Model)(nil)

type layer struct {
	inputNorm, postNorm *torch.Tensor // (C)
	qNorm, kNorm        *torch.Tensor // (D), Qwen3 only
	q, k, v, o          *model.Linear // q (Hq*D, C), k/v (Hkv*D, C), o (C, Hq*D)
	gate, up, down      *model.Linear // gate/up (F, C), down (C, F)
	qkv, gateUp         *model.Group  // q, k and v; gate and up: each reads one input
}

// Model is a Llama-style causal language model whose parameters live on one device.
type Model struct {
	Config         Config
	*model.Weights // parameters by Hugging Face name

	embed  *torch.Tensor // (V, C)
	cos    *torch.Tensor // (P, D) rotary tables for positions 0..P-1, grown on demand
	sin    *torch.Tensor
	tables *torch.Scope // owns cos and sin
	// tablesMu guards the growth of cos and sin against goroutines reading them: the
	// training loop may run Forward on shards of a batch concurrently.
	tablesMu sync.Mutex
	layers   []layer
	// linears indexes the projections by Hugging Face module path
	// ("model.layers.0.self_attn.q_proj"), for adapters.
	linears map[string]*model.Linear
	norm    *torch.Tensor // (C)
	head    *model.Linear // W (V, C); the embedding when tied
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
			if c.hasBias(name) {
				m[p+name+".bias"] = []int64{sh[0]}
			}
		}
		if c.Variant() == Qwen3 {
			m[p+"self_attn.q_norm.weight"] = []int64{int64(c.HeadDim)}
			m[p+"self_attn.k_norm.weight"] = []int64{int64(c.HeadDim)}
		}
	}
	return m
}

// hasBias says whether a projection has a bias: Qwen2 always on q, k and v; otherwise
// attention_bias for the attention projections and mlp_bias for the MLP.
func (c *Config) hasBias(proj string) bool {
	switch {
	case strings.HasPrefix(proj, "mlp."):
		return c.MLPBias
	case c.Variant() == Qwen2:
		return proj != "self_attn.o_proj"
	case c.Variant() == Mistral:
		return false
	}
	return c.AttentionBias
}

// New creates a model with Hugging Face's initialisation: linear and embedding weights
// drawn from N(0, initializer_range²) with a generator seeded by seed, biases zero, norm
// weights one.
func New(cfg Config, dev torch.Device, dtype torch.DType, seed uint64) (*Model, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Weights: model.NewWeights(dev, dtype), tables: torch.NewScope()}
	if err := m.InitRandom(cfg.shapes(), cfg.InitializerRange, seed); err != nil {
		m.Close()
		return nil, fmt.Errorf("llama: %w", err)
	}
	if err := m.bind(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// bind points the typed fields at the named parameters.
func (m *Model) bind() error {
	get := m.Named
	m.embed = get("model.embed_tokens.weight")
	m.norm = get("model.norm.weight")
	m.head = &model.Linear{W: get("lm_head.weight")}
	if m.Config.TieWordEmbeddings {
		m.head = &model.Linear{W: m.embed}
	}
	m.layers = make([]layer, m.Config.NumHiddenLayers)
	m.linears = map[string]*model.Linear{}
	for i := range m.layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		lin := func(n string) *model.Linear {
			l := &model.Linear{W: get(p + n + ".weight"), B: get(p + n + ".bias")}
			m.linears[p+n] = l
			return l
		}
		m.layers[i] = layer{
			inputNorm: get(p + "input_layernorm.weight"),
			postNorm:  get(p + "post_attention_layernorm.weight"),
			qNorm:     get(p + "self_attn.q_norm.weight"),
			kNorm:     get(p + "self_attn.k_norm.weight"),
			q:         lin("self_attn.q_proj"), k: lin("self_attn.k_proj"), v: lin("self_attn.v_proj"),
			o: lin("self_attn.o_proj"), gate: lin("mlp.gate_proj"), up: lin("mlp.up_proj"), down: lin("mlp.down_proj"),
		}
		l := &m.layers[i]
		l.qkv, l.gateUp = model.NewGroup(l.q, l.k, l.v), model.NewGroup(l.gate, l.up)
	}
	if missing := m.Missing(m.Config.shapes()); len(missing) > 0 {
		return fmt.Errorf("llama: %d parameters missing, e.g. %s", len(missing), missing[0])
	}
	return m.growTables(min(m.Config.MaxPositionEmbeddings, 4096))
}

// Close frees the parameters.
func (m *Model) Close() {
	m.Weights.Close()
	m.tables.Close()
}

// SetRequiresGrad marks every parameter as trainable (or not).
func (m *Model) SetRequiresGrad(on bool) error {
	for _, n := range m.Names() {
		if err := m.Named(n).SetRequiresGrad(on); err != nil {
			return fmt.Errorf("llama: %s: %w", n, err)
		}
	}
	return nil
}

// invFreq returns the rotary inverse frequencies theta^(-2i/D), i < D/2, computed in
// float32 as Hugging Face does, with the config's scaling applied.
func (m *Model) invFreq() ([]float32, error) {
	D := m.Config.HeadDim
	out := make([]float32, D/2)
	theta := float32(m.Config.RopeTheta)
	for i := range out {
		// HF: 1 / theta ** (arange(0, D, 2).float() / D), all in float32
		out[i] = 1 / float32(math.Pow(float64(theta), float64(float32(2*i)/float32(D))))
	}
	r := m.Config.RopeScaling
	switch r.kind() {
	case "linear":
		for i := range out {
			out[i] /= float32(r.Factor)
		}
	case "llama3":
		// Llama 3.1: frequencies whose wavelength exceeds the original context / low_freq_factor
		// are divided by factor, those shorter than context / high_freq_factor kept, and the
		// band between interpolated smoothly.
		factor, lo, hi := float32(r.Factor), float32(r.LowFreqFactor), float32(r.HighFreqFactor)
		old := float32(r.OriginalMaxPositionEmbeddings)
		loWave, hiWave := old/lo, old/hi
		for i, f := range out {
			wave := 2 * float32(math.Pi) / f
			scaled := f
			if wave > loWave {
				scaled = f / factor
			}
			if !(wave < hiWave) && !(wave > loWave) {
				smooth := (old/wave - lo) / (hi - lo)
				scaled = (1-smooth)*scaled/factor + smooth*scaled
			}
			out[i] = scaled
		}
	}
	return out, nil
}

// growTables (re)computes the cos and sin tables for positions 0..n-1: cos(p * inv_freq)
// duplicated over both halves of the head, in float32, cast to the model's dtype.
func (m *Model) growTables(n int) error {
	inv, err := m.invFreq()
	if err != nil {
		return err
	}
	D := int64(m.Config.HeadDim)
	tables := torch.NewScope()
	err = torch.NoGrad(func() error {
		s := torch.NewScope()
		defer s.Close()
		pos := s.To(s.Arange(0, float64(n), 1, torch.Int64, m.Device()), torch.Float32, m.Device())
		freqs := s.Mul(s.Reshape(pos, int64(n), 1), s.Float32s(inv, []int64{1, D / 2}, m.Device())) // (n, D/2)
		emb := s.Cat([]*torch.Tensor{freqs, freqs}, -1)                                             // (n, D)
		tables.Fail(s.Err())
		cos := tables.To(s.Cos(emb), m.DType(), m.Device())
		sin := tables.To(s.Sin(emb), m.DType(), m.Device())
		if err := tables.Err(); err != nil {
			return err
		}
		m.tables.Close()
		m.tables, m.cos, m.sin = tables, cos, sin
		return nil
	})
	if err != nil {
		tables.Close()
		return fmt.Errorf("llama: rotary tables: %w", err)
	}
	return nil
}

// rotary makes sure the rotary tables cover positions below n and returns what pick takes
// from them (views or copies of rows), under tablesMu so that no other goroutine grows
// them meanwhile.
func (m *Model) rotary(s *torch.Scope, n int64, pick func(cos, sin *torch.Tensor) (*torch.Tensor, *torch.Tensor)) (cos, sin *torch.Tensor, ok bool) {
	m.tablesMu.Lock()
	defer m.tablesMu.Unlock()
	if !m.tablesFor(s, n) {
		return nil, nil, false
	}
	cos, sin = pick(m.cos, m.sin)
	return cos, sin, true
}

// tablesFor makes sure the rotary tables cover positions below n (tablesMu held).
func (m *Model) tablesFor(s *torch.Scope, n int64) bool {
	if have := m.cos.Shape(); len(have) == 2 && have[0] >= n {
		return true
	}
	if n > int64(m.Config.MaxPositionEmbeddings) {
		s.Fail(&torch.Error{Op: "llama", Msg: fmt.Sprintf("%d positions exceed max_position_embeddings %d", n, m.Config.MaxPositionEmbeddings)})
		return false
	}
	want := max(n, 2*m.cos.Shape()[0])
	if err := m.growTables(int(min(want, int64(m.Config.MaxPositionEmbeddings)))); err != nil {
		s.Fail(err)
		return false
	}
	return true
}

// Forward returns logits (B, T, V) for token ids (B, T) at positions 0..T-1 under a causal
// mask (and the sliding window, if any). Errors are recorded on s (check s.Err()).
func (m *Model) Forward(s *torch.Scope, ids *torch.Tensor) *torch.Tensor {
	shape := ids.Shape()
	if len(shape) != 2 {
		s.Fail(&torch.Error{Op: "llama forward", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", shape)})
		return nil
	}
	T := shape[1]
	if T > int64(m.Config.MaxPositionEmbeddings) {
		s.Fail(&torch.Error{Op: "llama forward", Msg: fmt.Sprintf("sequence of %d tokens exceeds max_position_embeddings %d", T, m.Config.MaxPositionEmbeddings)})
		return nil
	}
	D := int64(m.Config.HeadDim)
	cos, sin, ok := m.rotary(s, T, func(cos, sin *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
		// views of the cached tables (they keep their memory if the tables grow)
		return s.Reshape(s.Slice(cos, 0, 0, T, 1), 1, 1, T, D), s.Reshape(s.Slice(sin, 0, 0, T, 1), 1, 1, T, D)
	})
	if !ok {
		return nil
	}
	opts := torch.AttentionOptions{Causal: true}
	if w := m.Config.window(); w > 0 && T > int64(w) {
		opts = torch.AttentionOptions{Mask: windowMask(s, T, T, 0, w, m.Device())}
	}
	return m.run(s, ids, cos, sin, opts, nil, false, nil)
}

// windowMask is (1, 1, T, S) bool: query i (slot past+i) may see key slot j when
// past+i-window < j <= past+i, Hugging Face's sliding-window rule.
func windowMask(s *torch.Scope, T, S, past int64, window int, dev torch.Device) *torch.Tensor {
	v := make([]bool, T*S)
	for i := int64(0); i < T; i++ {
		q := past + i
		for j := int64(0); j < S; j++ {
			v[i*S+j] = j <= q && j > q-int64(window)
		}
	}
	return s.Bools(v, []int64{1, 1, T, S}, dev)
}

// Step is the inference path with explicit positions, mask and a key/value cache; see
// model.CausalLM.
func (m *Model) Step(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache) *torch.Tensor {
	return m.step(s, ids, positions, mask, cache, true)
}

// StepAll is Step with the logits of every position (model.CausalLM).
func (m *Model) StepAll(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache) *torch.Tensor {
	return m.step(s, ids, positions, mask, cache, false)
}

func (m *Model) step(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache, lastOnly bool) *torch.Tensor {
	shape := ids.Shape()
	if len(shape) != 2 {
		s.Fail(&torch.Error{Op: "llama step", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", shape)})
		return nil
	}
	B, T := shape[0], shape[1]
	past := int64(0)
	if cache != nil {
		past = int64(cache.Len())
	}
	// Positions never exceed cache slots, but slots may exceed positions (padding, or the
	// sibling branches ClassifyBest keeps side by side): the tables need cover no more than
	// the model's positions.
	cos, sin, ok := m.rotary(s, min(past+T, int64(m.Config.MaxPositionEmbeddings)), m.rows(s, positions, B, T))
	if !ok {
		return nil
	}
	if w := m.Config.window(); w > 0 {
		mask = s.And(mask, windowMask(s, T, past+T, past, w, m.Device()))
	}
	logits := m.run(s, ids, cos, sin, torch.AttentionOptions{Mask: mask}, cache, lastOnly, nil)
	if cache != nil && s.Err() == nil {
		cache.Advance(int(T))
	}
	return logits
}

// Logits is the packed-scoring path; see model.CausalLM (the mask carries any sliding
// window).
func (m *Model) Logits(s *torch.Scope, ids, positions, mask, at *torch.Tensor) *torch.Tensor {
	shape := ids.Shape()
	if len(shape) != 2 {
		s.Fail(&torch.Error{Op: "llama logits", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", shape)})
		return nil
	}
	B, T := shape[0], shape[1]
	// A packed row has more slots than positions: size the tables by the positions.
	last, err := s.Amax(s.Reshape(positions, -1), []int64{0}, false).Item()
	if err != nil {
		s.Fail(err)
		return nil
	}
	cos, sin, ok := m.rotary(s, int64(last)+1, m.rows(s, positions, B, T))
	if !ok {
		return nil
	}
	return m.run(s, ids, cos, sin, torch.AttentionOptions{Mask: mask}, nil, false, at)
}

// rows picks the rotary tables' rows at positions (B, T) as (B, 1, T, D) copies.
func (m *Model) rows(s *torch.Scope, positions *torch.Tensor, B, T int64) func(cos, sin *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	return func(cos, sin *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
		D := int64(m.Config.HeadDim)
		flat := s.Reshape(positions, -1)
		return s.Reshape(s.IndexSelect(cos, 0, flat), B, 1, T, D), s.Reshape(s.IndexSelect(sin, 0, flat), B, 1, T, D)
	}
}

// run is the decoder stack shared by Forward, Step and Logits; lastOnly returns logits
// (B, V) of the last position, at (B, K) those of the positions it selects, and otherwise
// (B, T, V).
func (m *Model) run(s *torch.Scope, ids, cos, sin *torch.Tensor, opts torch.AttentionOptions, cache *model.KVCache, lastOnly bool, at *torch.Tensor) *torch.Tensor {
	shape := ids.Shape()
	if len(shape) != 2 {
		s.Fail(&torch.Error{Op: "llama", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", shape)})
		return nil
	}
	B, T := shape[0], shape[1]
	x := s.Embedding(m.embed, ids) // (B, T, C)
	fused, ok := m.fusedDecoding(x, cache, T)
	if ok {
		c := m.Config
		x = s.Reshape(s.DecodeLayers(s.Reshape(x, B, -1), fused, cos, sin, opts.Mask, cache.Len(),
			torch.DecodeShape{Heads: c.NumAttentionHeads, KVHeads: c.NumKeyValueHeads, HeadDim: c.HeadDim, Eps: c.RMSNormEps}), B, 1, -1)
	}
	for i := 0; i < len(m.layers) && !ok; i++ {
		// Each layer's intermediates live in a scope of their own, freed as soon as the
		// layer is done (autograd keeps its own references to what backward needs), so
		// memory is reused instead of growing with depth.
		ls := torch.NewScope()
		next := m.block(ls, i, x, cos, sin, opts, cache, B, T)
		s.Fail(ls.Err())
		prev := x
		x = next.MoveTo(s)
		prev.Free()
		ls.Close()
	}
	if lastOnly {
		x = s.Select(x, 1, T-1) // (B, C)
	}
	x = selectPositions(s, x, at)
	return m.head.Forward(s, s.RMSNorm(x, m.norm, m.Config.RMSNormEps))
}

// fusedDecoding returns the layers' weights for one fused call (torch.Scope.DecodeLayers)
// when the step may take it: one new token per row with a cache, x the hidden states of
// a decoding step (model.Decoding: no gradient, float32 on the CPU, a few rows), and
// no projection with an adapter. Quantized projections take their quantized weights,
// the others their float32 ones. Otherwise ok is false and the layers run op by op.
func (m *Model) fusedDecoding(x *torch.Tensor, cache *model.KVCache, T int64) ([]torch.DecodeLayer, bool) {
	if cache == nil || T != 1 || !model.Decoding(x) {
		return nil, false
	}
	out := make([]torch.DecodeLayer, len(m.layers))
	for i := range m.layers {
		l := &m.layers[i]
		d := &out[i]
		var ok [4]bool
		d.QKV, ok[0] = l.qkv.Decodable()
		d.O, ok[1] = l.o.Decodable()
		d.GateUp, ok[2] = l.gateUp.Decodable()
		d.Down, ok[3] = l.down.Decodable()
		if ok != [4]bool{true, true, true, true} {
			return nil, false
		}
		d.InputNorm, d.PostNorm, d.QNorm, d.KNorm = l.inputNorm, l.postNorm, l.qNorm, l.kNorm
		d.Keys, d.Values = cache.Layer(i)
	}
	return out, true
}

// selectPositions picks x[b, at[b, k], :] -> (B, K, C); at nil leaves x as it is.
func selectPositions(s *torch.Scope, x, at *torch.Tensor) *torch.Tensor {
	if at == nil {
		return x
	}
	sh := x.Shape()
	idx := s.Expand(s.Unsqueeze(at, 2), at.Shape()[0], at.Shape()[1], sh[2])
	return s.Gather(x, 1, idx)
}

// block is decoder layer i: x (B, T, C) -> x + attention, then + MLP.
func (m *Model) block(s *torch.Scope, i int, x, cos, sin *torch.Tensor, opts torch.AttentionOptions, cache *model.KVCache, B, T int64) *torch.Tensor {
	c := m.Config
	l := &m.layers[i]
	Hq, Hkv, D := int64(c.NumAttentionHeads), int64(c.NumKeyValueHeads), int64(c.HeadDim)
	h := s.RMSNorm(x, l.inputNorm, c.RMSNormEps)
	qkv := l.qkv.Forward(s, h)
	q := s.Reshape(qkv[0], B, T, Hq, D)
	k := s.Reshape(qkv[1], B, T, Hkv, D)
	if l.qNorm != nil { // Qwen3: RMSNorm over each head's queries and keys, before RoPE
		q, k = s.RMSNorm(q, l.qNorm, c.RMSNormEps), s.RMSNorm(k, l.kNorm, c.RMSNormEps)
	}
	q, k = s.Transpose(q, 1, 2), s.Transpose(k, 1, 2)       // (B, H, T, D)
	v := s.Transpose(s.Reshape(qkv[2], B, T, Hkv, D), 1, 2) // (B, Hkv, T, D)
	q, k = s.Rope(q, cos, sin), s.Rope(k, cos, sin)
	if cache != nil {
		k, v = cache.Update(s, i, k, v) // (B, Hkv, S, D)
	}
	a := s.Attention(q, k, v, opts)
	a = s.Reshape(s.Transpose(a, 1, 2), B, T, Hq*D) // (B, T, Hq*D)
	x = s.Add(x, l.o.Forward(s, a))
	h = s.RMSNorm(x, l.postNorm, c.RMSNormEps)
	// The MLP's (B, T, F) activations are the largest; free each as soon as it is used.
	gu := l.gateUp.Forward(s, h)
	g, u := gu[0], gu[1]
	act := s.Silu(g)
	g.Free()
	f := s.Mul(act, u)
	act.Free()
	u.Free()
	return s.Add(x, l.down.Forward(s, f))
}

// ProjectionGroups lists each layer's projections that read one input (q, k, v; gate,
// up), for model.Quantize.
func (m *Model) ProjectionGroups() []*model.Group {
	var gs []*model.Group
	for i := range m.layers {
		gs = append(gs, m.layers[i].qkv, m.layers[i].gateUp)
	}
	return gs
}

// OutputProjection is the projection from hidden states to logits.
func (m *Model) OutputProjection() *model.Linear { return m.head }

// Linears returns the model's projections by Hugging Face module path.
func (m *Model) Linears() map[string]*model.Linear { return m.linears }

// NewCache allocates a key/value cache for batch rows of up to capacity tokens.
func (m *Model) NewCache(batch, capacity int) (*model.KVCache, error) {
	c := m.Config
	return model.NewKVCache(c.NumHiddenLayers, batch, c.NumKeyValueHeads, capacity, c.HeadDim, m.DType(), m.Device())
}

// Info describes the model.
func (m *Model) Info() model.Info { return m.Config.info() }

func (c *Config) info() model.Info {
	return model.Info{
		Architecture: c.Architectures[0], ModelType: c.ModelType, Params: c.ParamCount(),
		Layers: c.NumHiddenLayers, Hidden: c.HiddenSize, Heads: c.NumAttentionHeads, KVHeads: c.NumKeyValueHeads,
		HeadDim: c.HeadDim, VocabSize: c.VocabSize, MaxPositions: c.MaxPositionEmbeddings,
		SlidingWindow: c.window(),
	}
}

// Save writes the model as a Hugging Face folder: config.json and model.safetensors.
// Both files are replaced atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := m.Config
	cfg.TorchDType = m.DType().String()
	if cfg.RopeParameters != nil { // written by transformers 5: keep its form only
		cfg.RopeScaling = nil
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := torch.Save(filepath.Join(dir, "model.safetensors"), m.Tensors(), map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "config.json"), append(b, '\n'))
}

// ignoredWeights are tensors some checkpoints carry that the model recomputes.
func ignoredWeight(name string) bool {
	return strings.HasSuffix(name, "rotary_emb.inv_freq")
}

// Load reads a Hugging Face model folder (config.json and safetensors weights) onto dev,
// converting the weights to dtype.
func Load(dir string, dev torch.Device, dtype torch.DType) (*Model, error) {
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	files, err := model.WeightFiles(dir)
	if err != nil {
		return nil, err
	}
	want := cfg.shapes()
	m := &Model{Config: cfg, Weights: model.NewWeights(dev, dtype), tables: torch.NewScope()}
	same := func(name string) string { return name }
	skip := func(name string) bool {
		return ignoredWeight(name) || (name == "lm_head.weight" && cfg.TieWordEmbeddings)
	}
	for _, path := range files {
		if err := m.LoadFile(path, want, same, skip); err != nil {
			m.Close()
			return nil, fmt.Errorf("llama: %w", err)
		}
	}
	if missing := m.Missing(want); len(missing) > 0 {
		m.Close()
		return nil, fmt.Errorf("llama: %s: %d weights missing, e.g. %s", dir, len(missing), missing[0])
	}
	if err := m.bind(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
