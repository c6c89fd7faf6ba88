// Package llama is the Llama-family decoder: LlamaForCausalLM (Llama 2/3.x, SmolLM,
// TinyLlama), Qwen2ForCausalLM (Qwen2, Qwen2.5: q/k/v biases), Qwen3ForCausalLM (RMSNorm
// on each head's queries and keys) and MistralForCausalLM (sliding-window attention). All
// share RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU MLP.
// Weights keep their Hugging Face names and the configuration decodes straight from a
// model folder's config.json.
//
// Dimension letters: B batch, T time (sequence), C hidden size, V vocabulary,
// Hq query heads, Hkv key/value heads, D head dimension, F MLP (intermediate) size.
package llama

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Config is the subset of a Hugging Face LlamaConfig that the model uses, with the same
// JSON names.
type Config struct {
	Architectures         []string `json:"architectures,omitempty"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`             // C
	IntermediateSize      int      `json:"intermediate_size"`       // F
	NumHiddenLayers       int      `json:"num_hidden_layers"`       // L
	NumAttentionHeads     int      `json:"num_attention_heads"`     // Hq
	NumKeyValueHeads      int      `json:"num_key_value_heads"`     // Hkv; 0 means Hq
	HeadDim               int      `json:"head_dim,omitempty"`      // D; 0 means C/Hq
	MaxPositionEmbeddings int      `json:"max_position_embeddings"` // longest sequence
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	HiddenAct             string   `json:"hidden_act"`
	InitializerRange      float64  `json:"initializer_range"`
	AttentionBias         bool     `json:"attention_bias"`
	MLPBias               bool     `json:"mlp_bias"`
	BosTokenID            *int     `json:"bos_token_id,omitempty"`
	EosTokenID            *int     `json:"eos_token_id,omitempty"`
	TorchDType            string   `json:"torch_dtype,omitempty"`

	// RopeScaling is config.json's rope_scaling; transformers 5 writes rope_parameters
	// (which also carries rope_theta) instead. Defaults folds either into RopeScaling.
	RopeScaling    *RopeScaling `json:"rope_scaling,omitempty"`
	RopeParameters *RopeScaling `json:"rope_parameters,omitempty"`
	// SlidingWindow limits attention to the last SlidingWindow keys (Mistral; Qwen only
	// when UseSlidingWindow is set, which Pioneer does not support).
	SlidingWindow    *int `json:"sliding_window,omitempty"`
	UseSlidingWindow bool `json:"use_sliding_window,omitempty"`
}

// RopeScaling selects how rotary frequencies are computed.
type RopeScaling struct {
	RopeType                      string  `json:"rope_type,omitempty"`
	Type                          string  `json:"type,omitempty"` // the older name of rope_type
	RopeTheta                     float64 `json:"rope_theta,omitempty"`
	Factor                        float64 `json:"factor,omitempty"`
	LowFreqFactor                 float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor                float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings,omitempty"`
	PartialRotaryFactor           float64 `json:"partial_rotary_factor,omitempty"`
}

// kind is the rope type, "default" when unset.
func (r *RopeScaling) kind() string {
	if r == nil {
		return "default"
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	if r.Type != "" {
		return r.Type
	}
	return "default"
}

// Variant is the architecture family a config describes.
type Variant int

// Variants.
const (
	Llama Variant = iota
	Qwen2
	Qwen3
	Mistral
)

// Variant derives the family from architectures / model_type.
func (c *Config) Variant() Variant {
	name := c.ModelType
	if len(c.Architectures) > 0 {
		name = c.Architectures[0]
	}
	switch {
	case strings.HasPrefix(name, "Qwen2") || name == "qwen2":
		return Qwen2
	case strings.HasPrefix(name, "Qwen3") || name == "qwen3":
		return Qwen3
	case strings.HasPrefix(name, "Mistral") || name == "mistral":
		return Mistral
	}
	return Llama
}

// window is the sliding-window length, 0 for full attention.
func (c *Config) window() int {
	if c.Variant() == Mistral && c.SlidingWindow != nil {
		return *c.SlidingWindow
	}
	return 0
}

// Defaults fills the fields a config.json may leave out with the values Hugging Face
// uses for them.
func (c *Config) Defaults() {
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.HeadDim == 0 && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.InitializerRange == 0 {
		c.InitializerRange = 0.02
	}
	if c.ModelType == "" {
		c.ModelType = "llama"
	}
	if len(c.Architectures) == 0 {
		c.Architectures = []string{"LlamaForCausalLM"}
	}
	if c.RopeScaling == nil && c.RopeParameters != nil {
		c.RopeScaling = c.RopeParameters
	}
	if c.RopeScaling != nil && c.RopeScaling.RopeTheta > 0 && c.RopeTheta == 0 {
		c.RopeTheta = c.RopeScaling.RopeTheta
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
}

// Validate reports the first inconsistency in the configuration.
func (c *Config) Validate() error {
	pos := map[string]int{
		"vocab_size": c.VocabSize, "hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize,
		"num_hidden_layers": c.NumHiddenLayers, "num_attention_heads": c.NumAttentionHeads,
		"num_key_value_heads": c.NumKeyValueHeads, "head_dim": c.HeadDim,
		"max_position_embeddings": c.MaxPositionEmbeddings,
	}
	for _, k := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings"} {
		if pos[k] <= 0 {
			return fmt.Errorf("llama config: %s must be positive, got %d", k, pos[k])
		}
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("llama config: num_attention_heads %d is not a multiple of num_key_value_heads %d",
			c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("llama config: head_dim %d must be even for rotary embeddings", c.HeadDim)
	}
	if c.HiddenAct != "silu" {
		return fmt.Errorf("llama config: hidden_act %q is not supported (want silu)", c.HiddenAct)
	}
	if c.RMSNormEps <= 0 || c.RopeTheta <= 0 {
		return fmt.Errorf("llama config: rms_norm_eps and rope_theta must be positive")
	}
	switch k := c.RopeScaling.kind(); k {
	case "default":
	case "linear":
		if c.RopeScaling.Factor <= 0 {
			return fmt.Errorf("llama config: linear rope scaling needs a positive factor")
		}
	case "llama3":
		r := c.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPositionEmbeddings <= 0 {
			return fmt.Errorf("llama config: llama3 rope scaling needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings")
		}
	default:
		return fmt.Errorf("llama config: rope type %q is not supported (supported: default, linear, llama3)", k)
	}
	if r := c.RopeScaling; r != nil && r.PartialRotaryFactor != 0 && r.PartialRotaryFactor != 1 {
		return fmt.Errorf("llama config: partial_rotary_factor %v is not supported", r.PartialRotaryFactor)
	}
	if c.UseSlidingWindow && c.Variant() != Mistral {
		return fmt.Errorf("llama config: use_sliding_window is not supported for %s", c.ModelType)
	}
	if w := c.window(); c.SlidingWindow != nil && c.Variant() == Mistral && w <= 0 {
		return fmt.Errorf("llama config: sliding_window must be positive, got %d", w)
	}
	return nil
}

// ReadConfig decodes and validates a config.json.
func ReadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParamCount is the number of parameters the configuration implies.
func (c *Config) ParamCount() int64 {
	C, F, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	qd := int64(c.NumAttentionHeads * c.HeadDim)
	kvd := int64(c.NumKeyValueHeads * c.HeadDim)
	attn := C*qd + 2*C*kvd + qd*C
	switch {
	case c.Variant() == Qwen2:
		attn += qd + 2*kvd
	case c.AttentionBias:
		attn += qd + 2*kvd + C
	}
	if c.Variant() == Qwen3 {
		attn += 2 * int64(c.HeadDim)
	}
	mlp := 3 * C * F
	if c.MLPBias {
		mlp += 2*F + C
	}
	layer := attn + mlp + 2*C
	n := V*C + int64(c.NumHiddenLayers)*layer + C
	if !c.TieWordEmbeddings {
		n += V * C
	}
	return n
}
