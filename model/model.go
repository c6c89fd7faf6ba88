// Package model is the common ground of Pioneer's architectures: the interface the engine
// drives (CausalLM), the key/value cache for incremental decoding, and a registry that
// opens a Hugging Face model folder with the architecture its config.json names.
// Architectures live in subpackages (model/llama, model/gpt2) and register themselves;
// import model/all to have every one available.
package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// CausalLM is a decoder-only language model with its weights on one device.
type CausalLM interface {
	// Forward returns logits (B, T, V) for ids (B, T) at positions 0..T-1 under a causal
	// mask: the training path. It may be called from several goroutines at once (the
	// training loop runs shards of a CPU batch on threads of their own).
	Forward(s *torch.Scope, ids *torch.Tensor) *torch.Tensor
	// Step runs ids (B, T) whose absolute positions are positions (B, T, int64) against
	// the keys already in cache plus their own, under mask (B, 1, T, S), bool, true =
	// may attend, S = cache.Len()+T; it appends their keys and values to cache and returns
	// the logits (B, V) of the last position only (what decoding needs; the output
	// projection of the other positions is skipped). cache may be nil (then S = T).
	// Every position must be below Info().MaxPositions (the cache may hold more slots
	// than that: padding, or the label-tree branches of a search); callers check, as
	// infer.Generate and infer.ClassifyBest do, since reading the positions back would
	// cost a device sync per step.
	Step(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *KVCache) *torch.Tensor
	// StepAll is Step returning the logits (B, T, V) of every position it runs (searches
	// that feed several candidate tokens per row at once need them all).
	StepAll(s *torch.Scope, ids, positions, mask *torch.Tensor, cache *KVCache) *torch.Tensor
	// Logits runs ids (B, T) at positions (B, T, int64) under mask (B, 1, T, T), bool,
	// true = may attend, without a cache, and returns the logits (B, K, V) of the
	// positions that at (B, K, int64) selects in each row (at nil: every position, K = T).
	// Rows may pack several continuations of one prompt side by side (tree-shaped
	// scoring); the mask and positions say which tokens see which, and the mask alone
	// decides (a sliding window, Info().SlidingWindow, is the caller's to apply).
	Logits(s *torch.Scope, ids, positions, mask, at *torch.Tensor) *torch.Tensor
	// NewCache allocates a cache for batch rows of up to capacity tokens.
	NewCache(batch, capacity int) (*KVCache, error)
	Parameters() []*torch.Tensor // in the order of Names
	Names() []string             // Hugging Face names
	Named(name string) *torch.Tensor
	// Linears returns the projections by Hugging Face module path
	// ("model.layers.0.self_attn.q_proj"), where adapters attach.
	Linears() map[string]*Linear
	Device() torch.Device
	DType() torch.DType
	Info() Info
	Save(dir string) error // a Hugging Face folder: config.json + model.safetensors
	Close()
}

// Tokenizer turns text into token ids and back (model/tokenizer.Tokenizer is one).
type Tokenizer interface {
	// Encode returns the ids of text; addSpecial adds the tokenizer's special tokens
	// (BOS...) as its post-processor defines them.
	Encode(text string, addSpecial bool) ([]int, error)
	// Decode turns ids back into text.
	Decode(ids []int, skipSpecial bool) string
}

// Info describes a loaded model.
type Info struct {
	Architecture string // e.g. "LlamaForCausalLM"
	ModelType    string // e.g. "qwen2"
	Params       int64
	Layers       int
	Hidden       int
	Heads        int
	KVHeads      int
	HeadDim      int
	VocabSize    int
	MaxPositions int
	// SlidingWindow, when > 0, is how many positions back a query may attend (Mistral).
	SlidingWindow int
}

// Loader opens a model folder onto dev, converting weights to dtype.
type Loader func(dir string, dev torch.Device, dtype torch.DType) (CausalLM, error)

// Inspector describes a model folder from its config.json alone, without loading weights.
type Inspector func(dir string) (Info, error)

type entry struct {
	load    Loader
	inspect Inspector
}

var registry = struct {
	sync.Mutex
	m map[string]entry
}{m: map[string]entry{}}

// Register makes an architecture (the name in config.json's "architectures") loadable.
func Register(architecture string, l Loader, i Inspector) {
	registry.Lock()
	defer registry.Unlock()
	registry.m[architecture] = entry{l, i}
}

func lookup(dir string) (entry, error) {
	arch, err := Architecture(dir)
	if err != nil {
		return entry{}, err
	}
	registry.Lock()
	e, ok := registry.m[arch]
	registry.Unlock()
	if !ok {
		return entry{}, fmt.Errorf("model: %s: architecture %s is not supported (supported: %s)",
			dir, arch, strings.Join(Supported(), ", "))
	}
	return e, nil
}

// Inspect describes a model folder from its configuration, without loading weights.
func Inspect(dir string) (Info, error) {
	e, err := lookup(dir)
	if err != nil {
		return Info{}, err
	}
	return e.inspect(dir)
}

// Supported lists the registered architectures.
func Supported() []string {
	registry.Lock()
	defer registry.Unlock()
	out := make([]string, 0, len(registry.m))
	for k := range registry.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Architecture reads the architecture a folder's config.json names.
func Architecture(dir string) (string, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("model: %w", err)
	}
	var c struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("model: %s: %w", path, err)
	}
	if len(c.Architectures) == 0 {
		return "", fmt.Errorf("model: %s names no architecture (model_type %q)", path, c.ModelType)
	}
	return c.Architectures[0], nil
}

// Load opens a Hugging Face model folder with its registered architecture.
func Load(dir string, dev torch.Device, dtype torch.DType) (CausalLM, error) {
	e, err := lookup(dir)
	if err != nil {
		return nil, err
	}
	return e.load(dir, dev, dtype)
}

// GenerationConfig is the part of generation_config.json generation uses.
type GenerationConfig struct {
	BosTokenID  int   // -1 when unset
	EosTokenIDs []int // generation stops at any of these
	PadTokenID  int   // -1 when unset
}

// ReadGenerationConfig reads generation_config.json, falling back to config.json's token
// ids; a folder with neither gives an empty config.
func ReadGenerationConfig(dir string) (GenerationConfig, error) {
	g := GenerationConfig{BosTokenID: -1, PadTokenID: -1}
	for _, name := range []string{"config.json", "generation_config.json"} { // later wins
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return g, err
		}
		var raw struct {
			Bos json.RawMessage `json:"bos_token_id"`
			Eos json.RawMessage `json:"eos_token_id"`
			Pad json.RawMessage `json:"pad_token_id"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return g, fmt.Errorf("model: %s: %w", filepath.Join(dir, name), err)
		}
		if ids := intOrList(raw.Bos); len(ids) > 0 {
			g.BosTokenID = ids[0]
		}
		if ids := intOrList(raw.Eos); len(ids) > 0 {
			g.EosTokenIDs = ids
		}
		if ids := intOrList(raw.Pad); len(ids) > 0 {
			g.PadTokenID = ids[0]
		}
	}
	return g, nil
}

// intOrList decodes a JSON int or list of ints; null or absent gives nil.
func intOrList(raw json.RawMessage) []int {
	var one int
	if json.Unmarshal(raw, &one) == nil && len(raw) > 0 && string(raw) != "null" {
		return []int{one}
	}
	var many []int
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}
