package gguf

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Writing a Hugging Face model as GGUF: the inverse of hf.go and tokenizer.go, in the
// conventions of llama.cpp's convert_hf_to_gguf.py (tensor names, the llama
// architecture's query/key row order, GPT-2's transposed Conv1D weights, hyper-parameters
// under <arch>.* keys, the tokenizer as tokenizer.ggml.* metadata).

// Source is a Hugging Face model to export.
type Source struct {
	Name            string
	Config          map[string]any // config.json
	Generation      map[string]any // generation_config.json; may be nil
	TokenizerJSON   []byte         // tokenizer.json; nil: no tokenizer metadata
	TokenizerConfig map[string]any // tokenizer_config.json; may be nil
	ChatTemplate    string         // "" when the model has none
	Names           []string       // Hugging Face tensor names
	// Tensor returns a weight as float32 in row-major order with its shape.
	Tensor func(name string) ([]float32, []int64, error)
}

// exportable are the types Export writes matrices as, with general.file_type (llama.cpp's
// llama_ftype; Q4_K files are its "Q4_K_S" kind: Q4_K matrices, a few of other types)
// and the type of the output head: Q8_0 with the 4- and 5-bit types (llama.cpp keeps it
// at 6 bits, Q6_K, which Pioneer does not write), since it costs the most accuracy.
var exportable = []exportType{
	{F32, F32, 0}, {F16, F16, 1}, {BF16, BF16, 32}, {Q8_0, Q8_0, 7},
	{Q5_1, Q8_0, 9}, {Q5_0, Q8_0, 8}, {Q4_1, Q8_0, 3}, {Q4_0, Q8_0, 2}, {Q4_K, Q8_0, 14},
}

type exportType struct {
	t, head Type
	ftype   uint32
}

// ExportTypes are the types Export writes matrices as.
func ExportTypes() []Type {
	var out []Type
	for _, e := range exportable {
		out = append(out, e.t)
	}
	return out
}

// Export builds the GGUF file of src with its matrices stored as t. Vectors stay F32. A
// matrix whose rows are not whole blocks of t falls back as llama.cpp's quantizer falls
// back (Q4_K to Q5_0), then to F16. The output head (or the embedding tied to it) is
// stored as exportable says.
func Export(src Source, t Type) (*Builder, error) {
	i := slices.IndexFunc(exportable, func(e exportType) bool { return e.t == t })
	if i < 0 {
		return nil, fmt.Errorf("gguf: exporting as %s is not supported (%v are)", t, ExportTypes())
	}
	kind := exportable[i]
	h, err := hparams(src.Config)
	if err != nil {
		return nil, err
	}
	b := NewBuilder()
	set := func(k string, v any) {
		if err == nil {
			err = b.Set(k, v)
		}
	}
	set("general.architecture", h.arch)
	set("general.type", "model")
	if src.Name != "" {
		set("general.name", src.Name)
	}
	set("general.file_type", kind.ftype)
	set("general.quantization_version", uint32(2))
	for _, kv := range h.meta {
		set(h.arch+"."+kv.Key, kv.Value)
	}
	if err != nil {
		return nil, err
	}
	if src.TokenizerJSON != nil {
		if err := vocabMetadata(b, src, h.vocab); err != nil {
			return nil, err
		}
	}
	if h.ropeFactors != nil {
		if err := addQuantized(b, ropeFreqs, F32, []int64{int64(len(h.ropeFactors))}, h.ropeFactors); err != nil {
			return nil, err
		}
	}
	a := arches[h.arch]
	names := slices.Clone(src.Names)
	slices.SortStableFunc(names, func(x, y string) int { return tensorOrder(x) - tensorOrder(y) })
	for _, name := range names {
		g, ok := h.ggufName(name)
		if !ok {
			return nil, fmt.Errorf("gguf: tensor %q has no GGUF name in architecture %s", name, h.arch)
		}
		v, shape, err := src.Tensor(name)
		if err != nil {
			return nil, err
		}
		for _, suffix := range a.transposed {
			if strings.HasSuffix(g, suffix) && len(shape) == 2 {
				out := make([]float32, len(v))
				transpose(out, v, shape)
				v, shape = out, []int64{shape[1], shape[0]}
			}
		}
		if a.permuteQK {
			if heads := permutedHeads(g, h.heads, h.kvHeads); heads > 0 {
				if v, err = permute(v, shape, heads); err != nil {
					return nil, fmt.Errorf("gguf: %s: %w", name, err)
				}
			}
		}
		tied := !slices.Contains(src.Names, "lm_head.weight")
		typ := t
		if g == "output.weight" || (g == "token_embd.weight" && tied) {
			typ = kind.head
		}
		if err := addQuantized(b, g, typ, shape, v); err != nil {
			return nil, err
		}
		if h.arch == "gpt2" && g == "token_embd.weight" && tied {
			// llama.cpp's GPT-2 converter repeats the tied embedding as the output head
			if err := addQuantized(b, "output.weight", typ, shape, v); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// tensorOrder puts the embedding first and the final norm and head last, blocks between
// (in name order, which Names already is).
func tensorOrder(name string) int {
	switch {
	case strings.Contains(name, "embed_tokens") || strings.HasSuffix(name, ".wte.weight") || strings.HasSuffix(name, ".wpe.weight"):
		return 0
	case strings.Contains(name, "layers.") || strings.Contains(name, ".h."):
		return 1
	}
	return 2
}

func addQuantized(b *Builder, name string, t Type, shape []int64, v []float32) error {
	fits := func(t Type) bool { return shape[len(shape)-1]%int64(t.BlockSize()) == 0 }
	switch {
	case len(shape) == 1:
		t = F32
	case t == Q4_K && !fits(t) && fits(Q5_0):
		t = Q5_0
	case !fits(t):
		t = F16
	}
	raw, err := Quantize(t, v)
	if err != nil {
		return fmt.Errorf("gguf: %s: %w", name, err)
	}
	return b.AddTensor(name, t, shape, raw)
}

// permute is convert_hf_to_gguf.py's reordering of a query or key projection's rows
// (the inverse of unpermute).
func permute(v []float32, shape []int64, heads int) ([]float32, error) {
	out := make([]float32, len(v))
	return out, reorderHeads(out, v, shape, heads, true)
}

// exportHParams is what Export derives from a config.json.
type exportHParams struct {
	arch           string
	meta           []KV
	heads, kvHeads int
	vocab          int
	ggufName       func(hf string) (string, bool)
	ropeFactors    []float32 // llama3 rotary scaling, written as rope_freqs.weight
}

func num(c map[string]any, key string) (float64, bool) {
	x, ok := c[key].(float64)
	return x, ok
}

func hparams(c map[string]any) (*exportHParams, error) {
	var arch string
	if list, ok := c["architectures"].([]any); ok && len(list) > 0 {
		arch, _ = list[0].(string)
	}
	h := &exportHParams{}
	u32 := func(key, ggufKey string, required bool) error {
		x, ok := num(c, key)
		if !ok {
			if required {
				return fmt.Errorf("gguf: config.json has no %s", key)
			}
			return nil
		}
		h.meta = append(h.meta, KV{ggufKey, Value{Type: TypeUint32, Data: uint32(x)}})
		return nil
	}
	f32 := func(key, ggufKey string, def float64) {
		x, ok := num(c, key)
		if !ok {
			x = def
		}
		h.meta = append(h.meta, KV{ggufKey, Value{Type: TypeFloat32, Data: float32(x)}})
	}
	var errs []error
	req := func(key, ggufKey string) { errs = append(errs, u32(key, ggufKey, true)) }
	switch arch {
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM":
		h.arch = map[string]string{"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}[arch]
		req("max_position_embeddings", "context_length")
		req("hidden_size", "embedding_length")
		req("intermediate_size", "feed_forward_length")
		req("num_hidden_layers", "block_count")
		req("num_attention_heads", "attention.head_count")
		heads, _ := num(c, "num_attention_heads")
		kv, ok := num(c, "num_key_value_heads")
		if !ok {
			kv = heads
		}
		h.meta = append(h.meta, KV{"attention.head_count_kv", Value{Type: TypeUint32, Data: uint32(kv)}})
		theta, ok := num(c, "rope_theta")
		rp, _ := c["rope_parameters"].(map[string]any)
		if !ok && rp != nil {
			theta, ok = num(rp, "rope_theta")
		}
		if !ok {
			theta = 10000
		}
		h.meta = append(h.meta, KV{"rope.freq_base", Value{Type: TypeFloat32, Data: float32(theta)}})
		f32("rms_norm_eps", "attention.layer_norm_rms_epsilon", 1e-6)
		hidden, _ := num(c, "hidden_size")
		headDim, ok := num(c, "head_dim")
		if !ok && heads > 0 {
			headDim = float64(int(hidden) / int(heads))
		}
		h.meta = append(h.meta, KV{"rope.dimension_count", Value{Type: TypeUint32, Data: uint32(headDim)}})
		if heads > 0 && int(headDim) != int(hidden)/int(heads) {
			h.meta = append(h.meta, KV{"attention.key_length", Value{Type: TypeUint32, Data: uint32(headDim)}},
				KV{"attention.value_length", Value{Type: TypeUint32, Data: uint32(headDim)}})
		}
		if arch == "MistralForCausalLM" {
			if w, ok := num(c, "sliding_window"); ok && w > 0 {
				h.meta = append(h.meta, KV{"attention.sliding_window", Value{Type: TypeUint32, Data: uint32(w)}})
			}
		}
		scaling, _ := c["rope_scaling"].(map[string]any)
		if scaling == nil {
			scaling = rp
		}
		if scaling != nil {
			kind, _ := scaling["rope_type"].(string)
			if kind == "" {
				kind, _ = scaling["type"].(string)
			}
			switch kind {
			case "", "default":
			case "linear":
				factor, _ := num(scaling, "factor")
				h.meta = append(h.meta, KV{"rope.scaling.type", Value{Type: TypeString, Data: "linear"}},
					KV{"rope.scaling.factor", Value{Type: TypeFloat32, Data: float32(factor)}})
			case "llama3":
				// as llama.cpp's converter: the parameters as a tensor of factors, with its
				// defaults for any left out
				p := map[string]float64{"factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}
				for k := range p {
					if x, ok := num(scaling, k); ok {
						p[k] = x
					}
				}
				if arch != "LlamaForCausalLM" {
					return nil, fmt.Errorf("gguf: llama3 rope scaling is written for Llama models only (llama.cpp reads rope_freqs.weight there), not %s", arch)
				}
				if !(p["factor"] >= 1) || !(p["low_freq_factor"] > 0) || !(p["low_freq_factor"] < p["high_freq_factor"]) || !(p["original_max_position_embeddings"] >= 1) {
					return nil, fmt.Errorf("gguf: llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings >= 1, got %v", p)
				}
				h.ropeFactors = llama3Factors(theta, int(headDim), p["factor"], p["low_freq_factor"], p["high_freq_factor"], p["original_max_position_embeddings"])
			default:
				return nil, fmt.Errorf("gguf: exporting rope scaling %q is not supported", kind)
			}
		}
		h.heads, h.kvHeads = int(heads), int(kv)
		h.ggufName = inverse("model.layers.", llamaBlock, map[string]string{
			"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"})
	case "GPT2LMHeadModel":
		h.arch = "gpt2"
		req("n_positions", "context_length")
		req("n_embd", "embedding_length")
		if inner, ok := num(c, "n_inner"); ok && inner > 0 {
			h.meta = append(h.meta, KV{"feed_forward_length", Value{Type: TypeUint32, Data: uint32(inner)}})
		} else if e, ok := num(c, "n_embd"); ok {
			h.meta = append(h.meta, KV{"feed_forward_length", Value{Type: TypeUint32, Data: uint32(4 * e)}})
		}
		req("n_layer", "block_count")
		req("n_head", "attention.head_count")
		f32("layer_norm_epsilon", "attention.layer_norm_epsilon", 1e-5)
		h.ggufName = inverse("transformer.h.", gpt2Block, map[string]string{
			"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
			"transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias", "lm_head.weight": "output.weight"})
	default:
		return nil, fmt.Errorf("gguf: exporting architecture %q is not supported (Llama, Mistral, Qwen2, Qwen3, GPT-2 are)", arch)
	}
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	v, ok := num(c, "vocab_size")
	if !ok {
		return nil, fmt.Errorf("gguf: config.json has no vocab_size")
	}
	h.vocab = int(v)
	h.meta = append(h.meta, KV{"vocab_size", Value{Type: TypeUint32, Data: uint32(v)}})
	return h, nil
}

var hfBlock = regexp.MustCompile(`^(.*)\.(\d+)\.(.+)\.(weight|bias)$`)

// inverse maps Hugging Face names back to GGUF ones: fixed names, then block tensors
// prefix+N+module through the reversed table.
func inverse(prefix string, table map[string]string, fixed map[string]string) func(string) (string, bool) {
	rev := map[string]string{}
	for g, hf := range table {
		rev[hf] = g
	}
	return func(hf string) (string, bool) {
		if g, ok := fixed[hf]; ok {
			return g, true
		}
		m := hfBlock.FindStringSubmatch(hf)
		if m == nil || m[1]+"." != prefix {
			return "", false
		}
		g, ok := rev[m[3]]
		if !ok {
			return "", false
		}
		return "blk." + m[2] + "." + g + "." + m[4], true
	}
}

// vocabMetadata stores a tokenizer.json as tokenizer.ggml.* metadata: a byte-level BPE
// one as llama.cpp's "gpt2" model with its pre-tokenizer's name, a SentencePiece-style
// one (BPE with byte fallback over "▁"-joined text; spmForm) as its "llama" model.
func vocabMetadata(b *Builder, src Source, vocabSize int) error {
	var tj struct {
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Model         struct {
			Type         string          `json:"type"`
			Vocab        map[string]int  `json:"vocab"`
			Merges       json.RawMessage `json:"merges"`
			ByteFallback bool            `json:"byte_fallback"`
			UnkToken     *string         `json:"unk_token"`
		} `json:"model"`
		Added []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(src.TokenizerJSON, &tj); err != nil {
		return fmt.Errorf("gguf: tokenizer.json: %w", err)
	}
	if tj.Model.Type != "BPE" {
		return fmt.Errorf("gguf: exporting a %s tokenizer is not supported: only BPE tokenizers (byte-level, or SentencePiece-style with byte fallback) are",
			tj.Model.Type)
	}
	var pre string
	var spacePrefix bool
	var err error
	if tj.Model.ByteFallback {
		if spacePrefix, err = spmForm(tj.Normalizer, tj.PreTokenizer); err != nil {
			return err
		}
	} else if pre, err = detectPre(tj.PreTokenizer, tj.Normalizer); err != nil {
		return err
	}
	n := vocabSize
	for _, id := range tj.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range tj.Added {
		n = max(n, a.ID+1)
	}
	tokens, types := make([]string, n), make([]int32, n)
	for tok, id := range tj.Model.Vocab {
		tokens[id], types[id] = tok, tokenNormal
	}
	for _, a := range tj.Added {
		tokens[a.ID], types[a.ID] = a.Content, tokenUserDefined
		if a.Special {
			types[a.ID] = tokenControl
		}
	}
	if tj.Model.ByteFallback {
		for id, t := range tokens {
			if byteToken.MatchString(t) && types[id] == tokenNormal {
				types[id] = tokenByte
			}
		}
		if u := tj.Model.UnkToken; u != nil {
			if id, ok := tj.Model.Vocab[*u]; ok {
				types[id] = tokenUnknown
			}
		}
	}
	for i := range tokens {
		if tokens[i] == "" { // padding rows of the embedding, as llama.cpp's converter names them
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokenUnused
		}
	}
	merges, err := joinMerges(tj.Model.Merges)
	if err != nil {
		return err
	}
	ids := map[string]int{}
	for i, t := range tokens {
		if _, dup := ids[t]; !dup {
			ids[t] = i
		}
	}
	special := func(configKey, genKey string) (int, bool) {
		if s, ok := src.TokenizerConfig[configKey].(string); ok {
			if id, ok := ids[s]; ok {
				return id, true
			}
		}
		switch x := src.Generation[genKey].(type) {
		case float64:
			return int(x), true
		case []any:
			if len(x) > 0 {
				if f, ok := x[0].(float64); ok {
					return int(f), true
				}
			}
		}
		if x, ok := num(src.Config, genKey); ok {
			return int(x), true
		}
		return 0, false
	}
	kvs := []KV{
		{"tokenizer.ggml.model", Value{Type: TypeString, Data: "gpt2"}},
		{"tokenizer.ggml.pre", Value{Type: TypeString, Data: pre}},
		{"tokenizer.ggml.tokens", Value{Type: TypeArray, Elem: TypeString, Data: tokens}},
		{"tokenizer.ggml.token_type", Value{Type: TypeArray, Elem: TypeInt32, Data: types}},
		{"tokenizer.ggml.merges", Value{Type: TypeArray, Elem: TypeString, Data: merges}},
	}
	if tj.Model.ByteFallback {
		// llama.cpp's SentencePiece tokenizer merges the adjacent pair whose piece scores
		// highest; it reads no merges (Pioneer does, for an exact round trip)
		kvs = []KV{
			{"tokenizer.ggml.model", Value{Type: TypeString, Data: "llama"}},
			{"tokenizer.ggml.tokens", Value{Type: TypeArray, Elem: TypeString, Data: tokens}},
			{"tokenizer.ggml.scores", Value{Type: TypeArray, Elem: TypeFloat32, Data: mergeScores(tokens, merges)}},
			{"tokenizer.ggml.token_type", Value{Type: TypeArray, Elem: TypeInt32, Data: types}},
			{"tokenizer.ggml.merges", Value{Type: TypeArray, Elem: TypeString, Data: merges}},
			{"tokenizer.ggml.add_space_prefix", Value{Type: TypeBool, Data: spacePrefix}},
		}
	}
	for _, s := range []struct{ cfg, gen, key string }{
		{"bos_token", "bos_token_id", "bos_token_id"}, {"eos_token", "eos_token_id", "eos_token_id"},
		{"unk_token", "unk_token_id", "unknown_token_id"}, {"pad_token", "pad_token_id", "padding_token_id"},
	} {
		if id, ok := special(s.cfg, s.gen); ok && id >= 0 && id < n {
			kvs = append(kvs, KV{"tokenizer.ggml." + s.key, Value{Type: TypeUint32, Data: uint32(id)}})
		}
	}
	addBOS := addsBOS(tj.PostProcessor)
	if x, ok := src.TokenizerConfig["add_bos_token"].(bool); ok {
		addBOS = x
	}
	kvs = append(kvs, KV{"tokenizer.ggml.add_bos_token", Value{Type: TypeBool, Data: addBOS}})
	if x, ok := src.TokenizerConfig["add_eos_token"].(bool); ok {
		kvs = append(kvs, KV{"tokenizer.ggml.add_eos_token", Value{Type: TypeBool, Data: x}})
	}
	if src.ChatTemplate != "" {
		kvs = append(kvs, KV{"tokenizer.chat_template", Value{Type: TypeString, Data: src.ChatTemplate}})
	}
	for _, kv := range kvs {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

var byteToken = regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)

// spmForm checks that a byte-fallback BPE tokenizer.json works as SentencePiece does
// (spaces replaced by "▁", no splitting before the merges) and says whether it adds a
// "▁" before the text: a normalizer [Prepend "▁"], Replace " " -> "▁" (the legacy
// form), or a Metaspace pre-tokenizer that does not split (prepend scheme first or
// always: a prefix; never: none).
func spmForm(normalizer, pre json.RawMessage) (spacePrefix bool, err error) {
	type step struct {
		Type        string `json:"type"`
		Prepend     string `json:"prepend"`
		Content     string `json:"content"`
		Replacement string `json:"replacement"`
		Scheme      string `json:"prepend_scheme"`
		Split       *bool  `json:"split"`
		Pattern     struct {
			String string `json:"String"`
		} `json:"pattern"`
		Normalizers []step `json:"normalizers"`
	}
	unsupported := fmt.Errorf("gguf: exporting this byte-fallback tokenizer is not supported: only the SentencePiece forms " +
		"(normalizer [Prepend \"▁\",] Replace \" \" -> \"▁\"; or a Metaspace pre-tokenizer without splitting) are")
	var n, p *step
	if err := json.Unmarshal(normalizer, &n); err != nil {
		return false, fmt.Errorf("gguf: tokenizer.json normalizer: %w", err)
	}
	if err := json.Unmarshal(pre, &p); err != nil {
		return false, fmt.Errorf("gguf: tokenizer.json pre_tokenizer: %w", err)
	}
	switch {
	case p == nil && n != nil:
		steps := []step{*n}
		if n.Type == "Sequence" {
			steps = n.Normalizers
		}
		if len(steps) == 2 && steps[0].Type == "Prepend" && steps[0].Prepend == "▁" {
			spacePrefix, steps = true, steps[1:]
		}
		if len(steps) == 1 && steps[0].Type == "Replace" && steps[0].Pattern.String == " " && steps[0].Content == "▁" {
			return spacePrefix, nil
		}
	case p != nil && n == nil && p.Type == "Metaspace" && p.Replacement == "▁" && p.Split != nil && !*p.Split:
		switch p.Scheme {
		case "first", "always":
			return true, nil
		case "never":
			return false, nil
		}
	}
	return false, unsupported
}

// mergeScores gives each piece the score llama.cpp's SentencePiece tokenizer ranks merges
// by: minus the rank of the first merge that makes it (earlier merges score higher);
// pieces no merge makes (characters, bytes, special tokens) score 0, as SentencePiece's own
// do, since they are never merged into.
func mergeScores(tokens, merges []string) []float32 {
	rank := make(map[string]int, len(merges))
	for r, m := range merges {
		l, rt, _ := strings.Cut(m, " ")
		if _, ok := rank[l+rt]; !ok {
			rank[l+rt] = r
		}
	}
	scores := make([]float32, len(tokens))
	for i, t := range tokens {
		if r, ok := rank[t]; ok {
			scores[i] = -float32(r + 1)
		}
	}
	return scores
}

// addsBOS reports whether a post-processor is a template starting with a special token.
func addsBOS(raw json.RawMessage) bool {
	var p struct {
		Type   string                       `json:"type"`
		Single []map[string]json.RawMessage `json:"single"`
	}
	if json.Unmarshal(raw, &p) != nil || p.Type != "TemplateProcessing" || len(p.Single) == 0 {
		return false
	}
	_, ok := p.Single[0]["SpecialToken"]
	return ok
}

// detectPre names (tokenizer.ggml.pre) the byte-level pre-tokenizer of a tokenizer.json.
func detectPre(raw, normalizer json.RawMessage) (string, error) {
	type step struct {
		Type             string `json:"type"`
		UseRegex         *bool  `json:"use_regex"`
		IndividualDigits bool   `json:"individual_digits"`
		Pattern          struct {
			Regex string `json:"Regex"`
		} `json:"pattern"`
		Pretokenizers []json.RawMessage `json:"pretokenizers"`
	}
	var top step
	if err := json.Unmarshal(raw, &top); err != nil {
		return "", fmt.Errorf("gguf: tokenizer.json pre_tokenizer: %w", err)
	}
	steps := []step{top}
	if top.Type == "Sequence" {
		steps = nil
		for _, r := range top.Pretokenizers {
			var s step
			if err := json.Unmarshal(r, &s); err != nil {
				return "", fmt.Errorf("gguf: tokenizer.json pre_tokenizer: %w", err)
			}
			steps = append(steps, s)
		}
	}
	var kinds []string
	for _, s := range steps {
		switch {
		case s.Type == "Split" && s.Pattern.Regex == llama3Split:
			kinds = append(kinds, "split-llama3")
		case s.Type == "Split" && s.Pattern.Regex == qwen2Split:
			kinds = append(kinds, "split-qwen2")
		case s.Type == "Digits" && s.IndividualDigits:
			kinds = append(kinds, "digits")
		case s.Type == "ByteLevel" && (s.UseRegex == nil || *s.UseRegex):
			kinds = append(kinds, "bytelevel-regex")
		case s.Type == "ByteLevel":
			kinds = append(kinds, "bytelevel")
		default:
			kinds = append(kinds, "?"+s.Type)
		}
	}
	switch strings.Join(kinds, "+") {
	case "bytelevel-regex":
		return "gpt2", nil
	case "digits+bytelevel-regex":
		return "smollm", nil
	case "split-llama3+bytelevel":
		return "llama-bpe", nil
	case "split-qwen2+bytelevel":
		return "qwen2", nil
	}
	return "", fmt.Errorf("gguf: the pre-tokenizer %s has no tokenizer.ggml.pre name Pioneer knows (%s)", raw, strings.Join(PreTokenizers(), ", "))
}
