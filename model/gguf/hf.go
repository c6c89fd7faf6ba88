package gguf

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A GGUF file seen as a Hugging Face model: the config.json its metadata implies, its
// tensors under Hugging Face names and in Hugging Face layout, and the generation ids.
// The mapping is the inverse of llama.cpp's convert_hf_to_gguf.py for the architectures
// Pioneer runs (llama, qwen2, qwen3, gpt2).

// arch describes how one GGUF architecture maps onto a Hugging Face one.
type arch struct {
	hfArch, modelType string
	// permuteQK: llama.cpp's converter reorders the rows of the query and key weights
	// (its "permute") for this architecture, so they must be put back.
	permuteQK bool
	// transposed lists GGUF tensor suffixes stored transposed relative to Hugging Face
	// (GPT-2's Conv1D weights).
	transposed []string
	names      func(gguf string) (string, bool)
}

var arches = map[string]arch{
	"llama": {hfArch: "LlamaForCausalLM", modelType: "llama", permuteQK: true, names: llamaName},
	"qwen2": {hfArch: "Qwen2ForCausalLM", modelType: "qwen2", names: llamaName},
	"qwen3": {hfArch: "Qwen3ForCausalLM", modelType: "qwen3", names: llamaName},
	"gpt2": {hfArch: "GPT2LMHeadModel", modelType: "gpt2", names: gpt2Name,
		transposed: []string{".attn_qkv.weight", ".attn_output.weight", ".ffn_up.weight", ".ffn_down.weight"}},
}

// Architectures lists the GGUF architectures Pioneer reads.
func Architectures() []string {
	out := make([]string, 0, len(arches))
	for k := range arches {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var blockName = regexp.MustCompile(`^blk\.(\d+)\.(.+)$`)

var llamaBlock = map[string]string{
	"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
	"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
	"attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
	"ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}

func llamaName(g string) (string, bool) {
	switch g {
	case "token_embd.weight":
		return "model.embed_tokens.weight", true
	case "output_norm.weight":
		return "model.norm.weight", true
	case "output.weight":
		return "lm_head.weight", true
	}
	return blockTensor(g, "model.layers.", llamaBlock)
}

var gpt2Block = map[string]string{
	"attn_norm": "ln_1", "ffn_norm": "ln_2", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
	"ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj",
}

func gpt2Name(g string) (string, bool) {
	switch g {
	case "token_embd.weight":
		return "transformer.wte.weight", true
	case "position_embd.weight":
		return "transformer.wpe.weight", true
	case "output_norm.weight":
		return "transformer.ln_f.weight", true
	case "output_norm.bias":
		return "transformer.ln_f.bias", true
	case "output.weight":
		return "lm_head.weight", true
	}
	return blockTensor(g, "transformer.h.", gpt2Block)
}

// blockTensor maps "blk.N.<module>.<weight|bias>" through table.
func blockTensor(g, prefix string, table map[string]string) (string, bool) {
	m := blockName.FindStringSubmatch(g)
	if m == nil {
		return "", false
	}
	module, kind, ok := strings.Cut(m[2], ".")
	if !ok || (kind != "weight" && kind != "bias") {
		return "", false
	}
	hf, ok := table[module]
	if !ok {
		return "", false
	}
	return prefix + m[1] + "." + hf + "." + kind, true
}

// Model is the Hugging Face view of a GGUF file.
type Model struct {
	File *File
	Arch string // the GGUF architecture ("llama")
	// Config is the config.json the metadata implies (JSON-ready values).
	Config map[string]any
	// Generation is the generation_config.json: bos/eos/pad ids from the tokenizer metadata.
	Generation map[string]any
	names      map[string]string // Hugging Face name -> GGUF tensor name
	hfNames    []string
	a          arch
	heads      int // query heads, for the Q/K permutation
	kvHeads    int
	ropeFreqs  *TensorInfo // llama3 rotary scaling factors, if the file has them
}

// ropeFreqs is the tensor of llama3 rotary scaling factors (rope.go).
const ropeFreqs = "rope_freqs.weight"

// HuggingFace maps the file onto a Hugging Face model. An architecture other than those
// of Architectures, a tensor with no Hugging Face name, or missing hyper-parameters is an
// error naming the file.
func (f *File) HuggingFace() (*Model, error) {
	name := f.String("general.architecture")
	a, ok := arches[name]
	if !ok {
		return nil, fmt.Errorf("gguf: %s: architecture %q is not supported (supported: %s)", f.Path, name, strings.Join(Architectures(), ", "))
	}
	m := &Model{File: f, Arch: name, a: a, names: map[string]string{}}
	for _, t := range f.Tensors {
		if t.Name == ropeFreqs && name == "llama" {
			rf := t
			m.ropeFreqs = &rf // llama3 rotary scaling: a config parameter, not a weight
			continue
		}
		hf, ok := a.names(t.Name)
		if !ok {
			return nil, fmt.Errorf("gguf: %s: tensor %q has no Hugging Face name in architecture %s", f.Path, t.Name, name)
		}
		m.names[hf] = t.Name
		m.hfNames = append(m.hfNames, hf)
	}
	var err error
	if name == "gpt2" {
		err = m.gpt2Config()
	} else {
		err = m.llamaConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", f.Path, err)
	}
	m.Generation = map[string]any{}
	for key, hf := range map[string]string{"bos_token_id": "bos_token_id", "eos_token_id": "eos_token_id", "padding_token_id": "pad_token_id"} {
		if v, ok := f.Get("tokenizer.ggml." + key); ok {
			if id, ok := v.Int(); ok {
				m.Generation[hf] = id
				m.Config[hf] = id
			}
		}
	}
	return m, nil
}

// meta reads "<arch>.<key>" as an int; required keys missing are an error.
func (m *Model) metaInt(key string, required bool) (int64, error) {
	v, ok := m.File.Get(m.Arch + "." + key)
	if !ok {
		if required {
			return 0, fmt.Errorf("metadata %s.%s is missing", m.Arch, key)
		}
		return 0, nil
	}
	n, ok := v.Int()
	if !ok || n < 0 {
		return 0, fmt.Errorf("metadata %s.%s = %v is not a non-negative integer", m.Arch, key, v.Data)
	}
	return n, nil
}

// metaFloat reads "<arch>.<key>" as a float; a float32 value is given as the shortest
// decimal that rounds to it (1e-05, not 9.99999974737875e-06), which is what the
// original config.json held.
func (m *Model) metaFloat(key string) (float64, bool) {
	v, ok := m.File.Get(m.Arch + "." + key)
	if !ok {
		return 0, false
	}
	if x, ok := v.Data.(float32); ok {
		d, err := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return d, err == nil
	}
	return v.Float()
}

func (m *Model) vocabSize() (int64, error) {
	n, err := m.metaInt("vocab_size", false)
	if err != nil || n > 0 {
		return n, err
	}
	if v, ok := m.File.Get("tokenizer.ggml.tokens"); ok && v.Len() > 0 {
		return int64(v.Len()), nil
	}
	if t, ok := m.File.Tensor("token_embd.weight"); ok {
		return int64(t.Dims[1]), nil
	}
	return 0, fmt.Errorf("no vocabulary size: neither %s.vocab_size, tokenizer.ggml.tokens nor token_embd.weight", m.Arch)
}

func (m *Model) llamaConfig() error {
	c := map[string]any{"architectures": []string{m.a.hfArch}, "model_type": m.a.modelType, "hidden_act": "silu"}
	for key, hf := range map[string]string{
		"embedding_length": "hidden_size", "feed_forward_length": "intermediate_size", "block_count": "num_hidden_layers",
		"attention.head_count": "num_attention_heads", "context_length": "max_position_embeddings",
	} {
		n, err := m.metaInt(key, true)
		if err != nil {
			return err
		}
		c[hf] = n
	}
	heads := c["num_attention_heads"].(int64)
	kv, err := m.metaInt("attention.head_count_kv", false)
	if err != nil {
		return err
	}
	if kv == 0 {
		kv = heads
	}
	c["num_key_value_heads"] = kv
	if d, err := m.metaInt("attention.key_length", false); err != nil {
		return err
	} else if d > 0 {
		c["head_dim"] = d
	}
	if c["vocab_size"], err = m.vocabSize(); err != nil {
		return err
	}
	if eps, ok := m.metaFloat("attention.layer_norm_rms_epsilon"); ok {
		c["rms_norm_eps"] = eps
	}
	if theta, ok := m.metaFloat("rope.freq_base"); ok {
		c["rope_theta"] = theta
	}
	switch kind := m.File.String(m.Arch + ".rope.scaling.type"); kind {
	case "", "none":
	case "linear":
		factor, ok := m.metaFloat("rope.scaling.factor")
		if !ok {
			return fmt.Errorf("linear rope scaling without %s.rope.scaling.factor", m.Arch)
		}
		c["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": factor}
	default:
		return fmt.Errorf("rope scaling %q is not supported", kind)
	}
	if m.ropeFreqs != nil {
		if c["rope_scaling"] != nil {
			return fmt.Errorf("%s next to %s.rope.scaling.type: two rotary scalings", ropeFreqs, m.Arch)
		}
		factors, err := m.File.Float32(*m.ropeFreqs)
		if err != nil {
			return err
		}
		theta, _ := c["rope_theta"].(float64)
		if theta == 0 {
			theta = 10000
		}
		dim, err := m.metaInt("rope.dimension_count", false)
		if err != nil {
			return err
		}
		if dim == 0 && heads == 0 {
			return fmt.Errorf("%s.attention.head_count is 0", m.Arch)
		}
		if dim == 0 {
			dim = c["hidden_size"].(int64) / heads
			if d, ok := c["head_dim"].(int64); ok {
				dim = d
			}
		}
		factor, low, high, orig, scaled, err := llama3Params(factors, theta, int(dim))
		if err != nil {
			return err
		}
		if scaled {
			c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": factor, "low_freq_factor": low,
				"high_freq_factor": high, "original_max_position_embeddings": orig}
		}
	}
	if w, err := m.metaInt("attention.sliding_window", false); err != nil {
		return err
	} else if w > 0 && m.Arch == "llama" {
		c["architectures"], c["model_type"], c["sliding_window"] = []string{"MistralForCausalLM"}, "mistral", w
	}
	_, hasHead := m.names["lm_head.weight"]
	c["tie_word_embeddings"] = !hasHead
	_, qBias := m.names["model.layers.0.self_attn.q_proj.bias"]
	_, oBias := m.names["model.layers.0.self_attn.o_proj.bias"]
	if m.Arch == "llama" && qBias {
		c["attention_bias"] = true
		if !oBias {
			return fmt.Errorf("query biases without output-projection biases: not a layout LlamaForCausalLM has")
		}
	}
	m.Config, m.heads, m.kvHeads = c, int(heads), int(kv)
	return nil
}

func (m *Model) gpt2Config() error {
	c := map[string]any{"architectures": []string{m.a.hfArch}, "model_type": m.a.modelType, "activation_function": "gelu_new"}
	for key, hf := range map[string]string{
		"embedding_length": "n_embd", "block_count": "n_layer", "attention.head_count": "n_head", "context_length": "n_positions",
	} {
		n, err := m.metaInt(key, true)
		if err != nil {
			return err
		}
		c[hf] = n
	}
	c["n_ctx"] = c["n_positions"]
	if ff, err := m.metaInt("feed_forward_length", false); err != nil {
		return err
	} else if ff > 0 {
		c["n_inner"] = ff
	}
	var err error
	if c["vocab_size"], err = m.vocabSize(); err != nil {
		return err
	}
	if eps, ok := m.metaFloat("attention.layer_norm_epsilon"); ok {
		c["layer_norm_epsilon"] = eps
	}
	_, hasHead := m.names["lm_head.weight"]
	c["tie_word_embeddings"] = !hasHead
	m.Config = c
	return nil
}

// Names lists the Hugging Face names of the tensors, in file order.
func (m *Model) Names() []string { return slices.Clone(m.hfNames) }

// Buffers are scratch space TensorInto reuses from one tensor to the next (loading a
// model then allocates the largest tensor twice, not every tensor).
type Buffers struct{ a, b []float32 }

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// TensorInto returns the tensor with Hugging Face name name as float32 in Hugging Face
// layout (row-major, of the returned shape): dequantized, transposed and un-permuted as
// the architecture needs. The result lives in buf's scratch space and is valid until the
// next call with it.
func (m *Model) TensorInto(name string, buf *Buffers) ([]float32, []int64, error) {
	g, ok := m.names[name]
	if !ok {
		return nil, nil, fmt.Errorf("gguf: %s: no tensor maps to %q", m.File.Path, name)
	}
	t, _ := m.File.Tensor(g)
	buf.a = grow(buf.a, int(t.Elements()))
	if err := DequantizeInto(buf.a, t.Type, m.File.Raw(t)); err != nil {
		return nil, nil, fmt.Errorf("%s: tensor %q: %w", m.File.Path, t.Name, err)
	}
	v, shape := buf.a, t.Shape()
	// fresh gives the next transform an output the size of v in buf.a; its input, the
	// current values, are then in buf.b.
	fresh := func() {
		buf.b = grow(buf.b, len(v))
		buf.a, buf.b = buf.b, buf.a
		v = buf.a
	}
	for _, suffix := range m.a.transposed {
		if strings.HasSuffix(g, suffix) && len(shape) == 2 {
			fresh()
			transpose(v, buf.b, shape)
			shape = []int64{shape[1], shape[0]}
		}
	}
	if m.a.permuteQK {
		if heads := permutedHeads(g, m.heads, m.kvHeads); heads > 0 {
			fresh()
			if err := unpermute(v, buf.b, shape, heads); err != nil {
				return nil, nil, fmt.Errorf("gguf: %s: tensor %q: %w", m.File.Path, g, err)
			}
		}
	}
	return v, shape, nil
}

// transpose writes the (r, c) matrix in into out as (c, r).
func transpose(out, in []float32, shape []int64) {
	r, c := int(shape[0]), int(shape[1])
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = in[i*c+j]
		}
	}
}

// permutedHeads is the head count llama.cpp's converter permuted GGUF tensor g's rows by:
// the query heads for a query projection, the key/value heads for a key projection, 0
// for any other tensor.
func permutedHeads(g string, heads, kvHeads int) int {
	switch {
	case strings.HasSuffix(g, ".attn_q.weight"), strings.HasSuffix(g, ".attn_q.bias"):
		return heads
	case strings.HasSuffix(g, ".attn_k.weight"), strings.HasSuffix(g, ".attn_k.bias"):
		return kvHeads
	}
	return 0
}

// unpermute undoes convert_hf_to_gguf.py's permute of a query or key projection: there,
// each head's rows (D of them) were reordered from [first half, second half] (Hugging
// Face's rotate-half layout) to interleaved pairs; here row 2i+p of a head goes back to
// row p*D/2+i.
func unpermute(out, v []float32, shape []int64, heads int) error {
	return reorderHeads(out, v, shape, heads, false)
}

// reorderHeads moves each head's rows between Hugging Face's halves layout (row p*D/2+i)
// and llama.cpp's interleaved pairs (row 2i+p): toGGUF says which way.
func reorderHeads(out, v []float32, shape []int64, heads int, toGGUF bool) error {
	rows := int(shape[0])
	cols := 1
	if len(shape) == 2 {
		cols = int(shape[1])
	}
	if heads <= 0 || rows%(2*heads) != 0 {
		return fmt.Errorf("%d rows do not split into %d heads of pairs", rows, heads)
	}
	half := rows / heads / 2
	for h := 0; h < heads; h++ {
		base := h * 2 * half
		for i := 0; i < half; i++ {
			for p := 0; p < 2; p++ {
				pairs, halves := base+2*i+p, base+p*half+i
				src, dst := pairs, halves
				if toGGUF {
					src, dst = halves, pairs
				}
				copy(out[dst*cols:(dst+1)*cols], v[src*cols:(src+1)*cols])
			}
		}
	}
	return nil
}
