// Package gpt2 is GPT2LMHeadModel: learned position embeddings, pre-LayerNorm blocks,
// fused query/key/value projection, GELU (tanh approximation) MLP, tied output head.
// Weights keep their Hugging Face names; GPT-2's projections are "Conv1D" layers whose
// weights are stored (in, out), the transpose of nn.Linear.
//
// Dimension letters: B batch, T time, C hidden size (n_embd), H heads, D = C/H, V vocabulary.
package gpt2

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
)

func init() {
	model.Register("GPT2LMHeadModel", func(dir string, dev torch.Device, dtype torch.DType) (model.CausalLM, error) {
		return Load(dir, dev, dtype)
	}, func(dir string) (model.Info, error) {
		cfg, err := readConfig(dir)
		if err != nil {
			return model.Info{}, err
		}
		return cfg.info(), nil
	})
}

// Config is the subset of a Hugging Face GPT2Config the model uses.
type Config struct {
	Architectures       []string `json:"architectures,omitempty"`
	ModelType           string   `json:"model_type"`
	VocabSize           int      `json:"vocab_size"`
	NEmbd               int      `json:"n_embd"`      // C
	NLayer              int      `json:"n_layer"`     // L
	NHead               int      `json:"n_head"`      // H
	NInner              *int     `json:"n_inner"`     // MLP size; null means 4*C
	NPositions          int      `json:"n_positions"` // longest sequence
	LayerNormEpsilon    float64  `json:"layer_norm_epsilon"`
	ActivationFunction  string   `json:"activation_function"`
	InitializerRange    float64  `json:"initializer_range"`
	ScaleAttnWeights    *bool    `json:"scale_attn_weights,omitempty"`
	ScaleAttnByLayerIdx bool     `json:"scale_attn_by_inverse_layer_idx,omitempty"`
	ReorderAndUpcast    bool     `json:"reorder_and_upcast_attn,omitempty"`
	TieWordEmbeddings   *bool    `json:"tie_word_embeddings,omitempty"`
	BosTokenID          *int     `json:"bos_token_id,omitempty"`
	EosTokenID          *int     `json:"eos_token_id,omitempty"`
	TorchDType          string   `json:"torch_dtype,omitempty"`
}

func (c *Config) inner() int {
	if c.NInner != nil && *c.NInner > 0 {
		return *c.NInner
	}
	return 4 * c.NEmbd
}

func (c *Config) tied() bool { return c.TieWordEmbeddings == nil || *c.TieWordEmbeddings }

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.VocabSize <= 0 || c.NEmbd <= 0 || c.NLayer <= 0 || c.NHead <= 0 || c.NPositions <= 0 {
		return fmt.Errorf("gpt2 config: vocab_size, n_embd, n_layer, n_head and n_positions must be positive")
	}
	if c.NEmbd%c.NHead != 0 {
		return fmt.Errorf("gpt2 config: n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	}
	switch c.ActivationFunction {
	case "gelu_new", "gelu_pytorch_tanh", "gelu", "":
	default:
		return fmt.Errorf("gpt2 config: activation %q is not supported (gelu_new, gelu_pytorch_tanh, gelu)", c.ActivationFunction)
	}
	if c.ScaleAttnWeights != nil && !*c.ScaleAttnWeights {
		return fmt.Errorf("gpt2 config: scale_attn_weights=false is not supported")
	}
	if c.ScaleAttnByLayerIdx || c.ReorderAndUpcast {
		return fmt.Errorf("gpt2 config: scale_attn_by_inverse_layer_idx and reorder_and_upcast_attn are not supported")
	}
	return nil
}

func (c *Config) shapes() map[string][]int64 {
	C, V, F := int64(c.NEmbd), int64(c.VocabSize), int64(c.inner())
	m := map[string][]int64{
		"transformer.wte.weight":  {V, C},
		"transformer.wpe.weight":  {int64(c.NPositions), C},
		"transformer.ln_f.weight": {C},
		"transformer.ln_f.bias":   {C},
	}
	if !c.tied() {
		m["lm_head.weight"] = []int64{V, C}
	}
	for i := 0; i < c.NLayer; i++ {
		p := fmt.Sprintf("transformer.h.%d.", i)
		for name, sh := range map[string][]int64{
			"ln_1.weight": {C}, "ln_1.bias": {C}, "ln_2.weight": {C}, "ln_2.bias": {C},
			"attn.c_attn.weight": {C, 3 * C}, "attn.c_attn.bias": {3 * C},
			"attn.c_proj.weight": {C, C}, "attn.c_proj.bias": {C},
			"mlp.c_fc.weight": {C, F}, "mlp.c_fc.bias": {F},
			"mlp.c_proj.weight": {F, C}, "mlp.c_proj.bias": {C},
		} {
			m[p+name] = sh
		}
	}
	return m
}

type block struct {
	ln1w, ln1b, ln2w, ln2b *torch.Tensor
	attn, proj, fc, out    *model.Linear // Conv1D: attn (C, 3C), proj (C, C), fc (C, F), out (F, C)
}

// Model is a GPT-2 language model on one device.
type Model struct {
	Config         Config
	*model.Weights // by Hugging Face name

	wte, wpe, lnfW, lnfB *torch.Tensor
	head                 *model.Linear // W (V, C); wte when tied
	blocks               []block
	linears              map[string]*model.Linear // by module path, e.g. "transformer.h.0.attn.c_attn"
}

var _ model.CausalLM = (*Model)(nil)

// New creates a model with random weights as Hugging Face initialises GPT-2: N(0, 0.02²)
// for embeddings and projections, LayerNorm weights one and biases zero.
func New(cfg Config, dev torch.Device, dtype torch.DType, seed uint64) (*Model, error) {
	if cfg.InitializerRange == 0 {
		cfg.InitializerRange = 0.02
	}
	if cfg.LayerNormEpsilon == 0 {
		cfg.LayerNormEpsilon = 1e-5
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Weights: model.NewWeights(dev, dtype)}
	if err := m.InitRandom(cfg.shapes(), cfg.InitializerRange, seed); err != nil {
		m.Close()
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	m.bind()
	return m, nil
}

func (m *Model) bind() {
	get := m.Named
	m.wte, m.wpe = get("transformer.wte.weight"), get("transformer.wpe.weight")
	m.lnfW, m.lnfB = get("transformer.ln_f.weight"), get("transformer.ln_f.bias")
	m.head = &model.Linear{W: get("lm_head.weight")}
	if m.Config.tied() {
		m.head = &model.Linear{W: m.wte}
	}
	m.blocks = make([]block, m.Config.NLayer)
	m.linears = map[string]*model.Linear{}
	for i := range m.blocks {
		p := fmt.Sprintf("transformer.h.%d.", i)
		c := func(n string) *model.Linear {
			l := &model.Linear{W: get(p + n + ".weight"), B: get(p + n + ".bias"), Conv1D: true}
			m.linears[p+n] = l
			return l
		}
		m.blocks[i] = block{
			ln1w: get(p + "ln_1.weight"), ln1b: get(p + "ln_1.bias"), ln2w: get(p + "ln_2.weight"), ln2b: get(p + "ln_2.bias"),
			attn: c("attn.c_attn"), proj: c("attn.c_proj"), fc: c("mlp.c_fc"), out: c("mlp.c_proj"),
		}
	}
}

// Info describes the model.
func (m *Model) Info() model.Info { return m.Config.info() }

func (c Config) info() model.Info {
	var n int64
	for _, sh := range c.shapes() {
		k := int64(1)
		for _, d := range sh {
			k *= d
		}
		n += k
	}
	return model.Info{
		Architecture: "GPT2LMHeadModel", ModelType: "gpt2", Params: n, Layers: c.NLayer, Hidden: c.NEmbd,
		Heads: c.NHead, KVHeads: c.NHead, HeadDim: c.NEmbd / c.NHead, VocabSize: c.VocabSize, MaxPositions: c.NPositions,
	}
}

// OutputProjection is the projection from hidden states to logits.
func (m *Model) OutputProjection() *model.Linear { return m.head }

// Linears returns the model's projections by Hugging Face module path.
func (m *Model) Linears() map[string]*model.Linear { return m.linears }

// NewCache allocates a key/value cache.
func (m *Model) NewCache(batch, capacity int) (*model.KVCache, error) {
	c := m.Config
	return model.NewKVCache(c.NLayer, batch, c.NHead, capacity, c.NEmbd/c.NHead, m.DType(), m.Device())
}

// Forward returns logits (B, T, V) for ids (B, T) at positions 0..T-1, causally.
func (m *Model) Forward(s *torch.Scope, ids *torch.Tensor) *torch.Tensor {
	sh := ids.Shape()
	if len(sh) != 2 {
		s.Fail(&torch.Error{Op: "gpt2 forward", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", sh)})
		return nil
	}
	T := sh[1]
	if T > int64(m.Config.NPositions) {
		s.Fail(&torch.Error{Op: "gpt2 forward", Msg: fmt.Sprintf("sequence of %d tokens exceeds n_positions %d", T, m.Config.NPositions)})
		return nil
	}
	pos := s.Unsqueeze(s.Arange(0, float64(T), 1, torch.Int64, m.Device()), 0) // (1, T)
	return m.run(s, ids, pos, torch.AttentionOptions{Causal: true}, nil, false, nil)
}

// Step is the inference path with positions, mask and cache; see model.CausalLM.
func (m *Model) Step(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache) *torch.Tensor {
	return m.step(s, ids, positions, mask, cache, true)
}

// StepAll is Step with the logits of every position (model.CausalLM).
func (m *Model) StepAll(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache) *torch.Tensor {
	return m.step(s, ids, positions, mask, cache, false)
}

func (m *Model) step(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *model.KVCache, lastOnly bool) *torch.Tensor {
	sh := ids.Shape()
	if len(sh) != 2 {
		s.Fail(&torch.Error{Op: "gpt2 step", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", sh)})
		return nil
	}
	logits := m.run(s, ids, positions, torch.AttentionOptions{Mask: mask}, cache, lastOnly, nil)
	if cache != nil && s.Err() == nil {
		cache.Advance(int(sh[1]))
	}
	return logits
}

// Logits is the packed-scoring path; see model.CausalLM.
func (m *Model) Logits(s *torch.Scope, ids, positions, mask, at *torch.Tensor) *torch.Tensor {
	if sh := ids.Shape(); len(sh) != 2 {
		s.Fail(&torch.Error{Op: "gpt2 logits", Msg: fmt.Sprintf("ids must be (B, T), got shape %v", sh)})
		return nil
	}
	return m.run(s, ids, positions, torch.AttentionOptions{Mask: mask}, nil, false, at)
}

func (m *Model) act(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	if m.Config.ActivationFunction == "gelu" {
		return s.Gelu(x)
	}
	return s.GeluTanh(x) // gelu_new and gelu_pytorch_tanh
}

// run is the stack shared by Forward, Step and Logits; lastOnly returns logits (B, V) of
// the last position, at (B, K) those of the positions it selects, and otherwise (B, T, V).
func (m *Model) run(s *torch.Scope, ids, positions *torch.Tensor, opts torch.AttentionOptions, cache *model.KVCache, lastOnly bool, at *torch.Tensor) *torch.Tensor {
	sh := ids.Shape()
	B, T := sh[0], sh[1]
	eps := m.Config.LayerNormEpsilon
	x := s.Add(s.Embedding(m.wte, ids), s.Embedding(m.wpe, positions)) // (B, T, C)
	for i := range m.blocks {
		// Per-layer scope: intermediates are freed when the layer is done (autograd keeps
		// its own references), so memory is reused instead of growing with depth.
		ls := torch.NewScope()
		next := m.block(ls, i, x, opts, cache, B, T)
		s.Fail(ls.Err())
		prev := x
		x = next.MoveTo(s)
		prev.Free()
		ls.Close()
	}
	if lastOnly {
		x = s.Select(x, 1, T-1) // (B, C)
	}
	if at != nil {
		sh := x.Shape()
		x = s.Gather(x, 1, s.Expand(s.Unsqueeze(at, 2), at.Shape()[0], at.Shape()[1], sh[2]))
	}
	return m.head.Forward(s, s.LayerNorm(x, m.lnfW, m.lnfB, eps))
}

// block is layer i: x (B, T, C) -> x + attention, then + MLP.
func (m *Model) block(s *torch.Scope, i int, x *torch.Tensor, opts torch.AttentionOptions, cache *model.KVCache, B, T int64) *torch.Tensor {
	c := m.Config
	C, H := int64(c.NEmbd), int64(c.NHead)
	D := C / H
	eps := c.LayerNormEpsilon
	b := &m.blocks[i]
	heads := func(t *torch.Tensor) *torch.Tensor { // (B, T, C) -> (B, H, T, D)
		return s.Transpose(s.Reshape(t, B, T, H, D), 1, 2)
	}
	h := s.LayerNorm(x, b.ln1w, b.ln1b, eps)
	qkv := b.attn.Forward(s, h) // (B, T, 3C)
	q := heads(s.Slice(qkv, 2, 0, C, 1))
	k := heads(s.Slice(qkv, 2, C, 2*C, 1))
	v := heads(s.Slice(qkv, 2, 2*C, 3*C, 1))
	if cache != nil {
		k, v = cache.Update(s, i, k, v)
	}
	a := s.Reshape(s.Transpose(s.Attention(q, k, v, opts), 1, 2), B, T, C)
	x = s.Add(x, b.proj.Forward(s, a))
	h = s.LayerNorm(x, b.ln2w, b.ln2b, eps)
	return s.Add(x, b.out.Forward(s, m.act(s, b.fc.Forward(s, h))))
}

// Save writes config.json and model.safetensors.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := m.Config
	cfg.TorchDType = m.DType().String()
	if len(cfg.Architectures) == 0 {
		cfg.Architectures = []string{"GPT2LMHeadModel"}
	}
	if cfg.ModelType == "" {
		cfg.ModelType = "gpt2"
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

func readConfig(dir string) (Config, error) {
	var cfg Config
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("gpt2: %s: %w", path, err)
	}
	if cfg.LayerNormEpsilon == 0 {
		cfg.LayerNormEpsilon = 1e-5
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Load reads a GPT-2 folder (config.json, model.safetensors) onto dev as dtype.
func Load(dir string, dev torch.Device, dtype torch.DType) (*Model, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	want := cfg.shapes()
	m := &Model{Config: cfg, Weights: model.NewWeights(dev, dtype)}
	key := func(name string) string {
		if _, ok := want[name]; !ok {
			return "transformer." + name // some checkpoints omit the "transformer." prefix
		}
		return name
	}
	skip := func(name string) bool { return isBuffer(name) || (name == "lm_head.weight" && cfg.tied()) }
	files, err := model.WeightFiles(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	wpath := files[0]
	if len(files) > 1 {
		m.Close()
		return nil, fmt.Errorf("gpt2: %s: sharded weights are not supported", dir)
	}
	if err := m.LoadFile(wpath, want, key, skip); err != nil {
		m.Close()
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	if missing := m.Missing(want); len(missing) > 0 {
		m.Close()
		return nil, fmt.Errorf("gpt2: %s: weight %s missing", wpath, missing[0])
	}
	m.bind()
	return m, nil
}

// isBuffer reports the attention-mask buffers older GPT-2 checkpoints carry.
func isBuffer(name string) bool {
	return strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias")
}
