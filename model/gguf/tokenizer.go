package gguf

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The tokenizer of a GGUF file (tokenizer.ggml.*) rebuilt as a Hugging Face
// tokenizer.json for the tokenizers library, and the tokenizer_config.json around it
// (special tokens, the chat template from tokenizer.chat_template).

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	tokenNormal      = 1
	tokenUnknown     = 2
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
	tokenByte        = 6
)

// Split patterns of the pre-tokenizers that are not plain GPT-2 byte-level, as the
// original models' tokenizer.json files write them (llama.cpp's llama-vocab.cpp uses the
// same expressions for these tokenizer.ggml.pre names).
const (
	llama3Split = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Split  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// bpePre is what one tokenizer.ggml.pre value means for a byte-level BPE tokenizer.
type bpePre struct {
	normalizer   any
	preTokenizer any
	ignoreMerges bool
}

func byteLevel(useRegex bool) map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex}
}

func split(pattern string) map[string]any {
	return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false}
}

func sequence(steps ...any) map[string]any {
	return map[string]any{"type": "Sequence", "pretokenizers": steps}
}

var bpePres = map[string]bpePre{
	"default": {preTokenizer: byteLevel(true)},
	"gpt2":    {preTokenizer: byteLevel(true)},
	// SmolLM: every digit on its own, then GPT-2's byte-level split.
	"smollm":    {preTokenizer: sequence(map[string]any{"type": "Digits", "individual_digits": true}, byteLevel(true))},
	"llama-bpe": {preTokenizer: sequence(split(llama3Split), byteLevel(false)), ignoreMerges: true},
	"llama3":    {preTokenizer: sequence(split(llama3Split), byteLevel(false)), ignoreMerges: true},
	"qwen2":     {normalizer: map[string]any{"type": "NFC"}, preTokenizer: sequence(split(qwen2Split), byteLevel(false))},
}

// PreTokenizers lists the tokenizer.ggml.pre values Pioneer reads for BPE tokenizers.
func PreTokenizers() []string {
	out := make([]string, 0, len(bpePres))
	for k := range bpePres {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Vocab is a GGUF file's tokenizer metadata.
type Vocab struct {
	Model  string // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
	Pre    string // tokenizer.ggml.pre
	Tokens []string
	Types  []int32   // may be nil
	Scores []float32 // may be nil
	Merges []string  // "left right"; SentencePiece files usually have none
	// Special ids, -1 when absent.
	BOS, EOS, UNK, PAD int
	AddBOS, AddEOS     bool
	AddSpacePrefix     bool // SentencePiece: prepend "▁" to the text
	ChatTemplate       string
}

// Vocab reads the tokenizer metadata.
func (f *File) Vocab() (*Vocab, error) {
	v := &Vocab{Model: f.String("tokenizer.ggml.model"), Pre: f.String("tokenizer.ggml.pre"), ChatTemplate: f.String("tokenizer.chat_template")}
	if v.Model == "" {
		return nil, fmt.Errorf("gguf: %s has no tokenizer (tokenizer.ggml.model is absent)", f.Path)
	}
	tokens, ok := f.Get("tokenizer.ggml.tokens")
	if v.Tokens, _ = tokens.Data.([]string); !ok || len(v.Tokens) == 0 {
		return nil, fmt.Errorf("gguf: %s: tokenizer.ggml.tokens is absent or not a list of strings", f.Path)
	}
	if t, ok := f.Get("tokenizer.ggml.token_type"); ok {
		ids, ok := t.Ints()
		if !ok || len(ids) != len(v.Tokens) {
			return nil, fmt.Errorf("gguf: %s: tokenizer.ggml.token_type has %d entries for %d tokens", f.Path, t.Len(), len(v.Tokens))
		}
		v.Types = make([]int32, len(ids))
		for i, x := range ids {
			v.Types[i] = int32(x)
		}
	}
	if s, ok := f.Get("tokenizer.ggml.scores"); ok {
		if v.Scores, _ = s.Data.([]float32); len(v.Scores) != len(v.Tokens) {
			return nil, fmt.Errorf("gguf: %s: tokenizer.ggml.scores has %d entries for %d tokens", f.Path, s.Len(), len(v.Tokens))
		}
	}
	if m, ok := f.Get("tokenizer.ggml.merges"); ok {
		if v.Merges, ok = m.Data.([]string); !ok {
			return nil, fmt.Errorf("gguf: %s: tokenizer.ggml.merges is not a list of strings", f.Path)
		}
	}
	id := func(key string) (int, error) {
		x, ok := f.Get("tokenizer.ggml." + key)
		if !ok {
			return -1, nil
		}
		n, ok := x.Int()
		if !ok || n < 0 || n >= int64(len(v.Tokens)) {
			return -1, fmt.Errorf("gguf: %s: tokenizer.ggml.%s = %v is not a token id", f.Path, key, x.Data)
		}
		return int(n), nil
	}
	var err error
	for key, dst := range map[string]*int{"bos_token_id": &v.BOS, "eos_token_id": &v.EOS, "unknown_token_id": &v.UNK, "padding_token_id": &v.PAD} {
		if *dst, err = id(key); err != nil {
			return nil, err
		}
	}
	flag := func(key string, def bool) bool {
		x, ok := f.Get("tokenizer.ggml." + key)
		if b, isBool := x.Data.(bool); ok && isBool {
			return b
		}
		return def
	}
	// llama.cpp's defaults: SentencePiece adds BOS and the space prefix, BPE neither.
	spm := v.Model == "llama"
	v.AddBOS, v.AddEOS, v.AddSpacePrefix = flag("add_bos_token", spm), flag("add_eos_token", false), flag("add_space_prefix", spm)
	return v, nil
}

func (v *Vocab) typeOf(id int) int32 {
	if v.Types == nil {
		return tokenNormal
	}
	return v.Types[id]
}

// TokenizerJSON builds the tokenizer.json of the vocabulary.
func (v *Vocab) TokenizerJSON() ([]byte, error) {
	vocab := make(map[string]int, len(v.Tokens))
	for i, t := range v.Tokens {
		if _, dup := vocab[t]; !dup { // a repeated piece keeps its first id
			vocab[t] = i
		}
	}
	var added []map[string]any
	for i, t := range v.Tokens {
		if typ := v.typeOf(i); typ == tokenControl || typ == tokenUserDefined || (typ == tokenUnknown && v.Model == "llama") {
			added = append(added, map[string]any{"id": i, "content": t, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": false, "special": typ != tokenUserDefined})
		}
	}
	tok := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added}
	switch v.Model {
	case "gpt2":
		pre, ok := bpePres[v.Pre]
		if v.Pre == "" {
			pre, ok = bpePres["default"], true
		}
		if !ok {
			return nil, fmt.Errorf("gguf: tokenizer.ggml.pre %q is not supported (supported: %s)", v.Pre, strings.Join(PreTokenizers(), ", "))
		}
		merges, err := splitMerges(v.Merges)
		if err != nil {
			return nil, err
		}
		tok["normalizer"] = pre.normalizer
		tok["pre_tokenizer"] = pre.preTokenizer
		tok["decoder"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
		tok["model"] = map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre.ignoreMerges,
			"vocab": vocab, "merges": merges}
	case "llama":
		if v.Scores == nil && v.Merges == nil {
			return nil, fmt.Errorf("gguf: a SentencePiece tokenizer needs tokenizer.ggml.scores or tokenizer.ggml.merges")
		}
		merges, err := v.spmMerges(vocab)
		if err != nil {
			return nil, err
		}
		var norm []any
		if v.AddSpacePrefix {
			norm = append(norm, map[string]any{"type": "Prepend", "prepend": "▁"})
		}
		norm = append(norm, map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"})
		tok["normalizer"] = map[string]any{"type": "Sequence", "normalizers": norm}
		tok["pre_tokenizer"] = nil
		dec := []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
		}
		if v.AddSpacePrefix {
			dec = append(dec, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
		}
		tok["decoder"] = map[string]any{"type": "Sequence", "decoders": dec}
		var unk any
		if v.UNK >= 0 {
			unk = v.Tokens[v.UNK]
		}
		tok["model"] = map[string]any{"type": "BPE", "dropout": nil, "unk_token": unk, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": vocab, "merges": merges}
	default:
		return nil, fmt.Errorf("gguf: tokenizer model %q is not supported (gpt2 and llama are)", v.Model)
	}
	tok["post_processor"] = v.postProcessor()
	return json.Marshal(tok)
}

// splitMerges turns GGUF's "left right" merges into tokenizer.json pairs.
func splitMerges(merges []string) ([][2]string, error) {
	out := make([][2]string, len(merges))
	for i, m := range merges {
		l, r, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("gguf: tokenizer.ggml.merges[%d] = %q has no space", i, m)
		}
		out[i] = [2]string{l, r}
	}
	return out, nil
}

// joinMerges reads tokenizer.json merges, pairs or "left right" strings, as GGUF's strings.
func joinMerges(raw json.RawMessage) ([]string, error) {
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		out := make([]string, len(pairs))
		for i, p := range pairs {
			out[i] = p[0] + " " + p[1]
		}
		return out, nil
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("gguf: tokenizer.json merges: %w", err)
	}
	return out, nil
}

// postProcessor adds BOS / EOS as add_bos_token / add_eos_token say.
func (v *Vocab) postProcessor() any {
	var single, pair []any
	special := map[string]any{}
	mark := func(id int) any {
		t := v.Tokens[id]
		special[t] = map[string]any{"id": t, "ids": []int{id}, "tokens": []string{t}}
		return map[string]any{"SpecialToken": map[string]any{"id": t, "type_id": 0}}
	}
	seq := func(s string, typeID int) any {
		return map[string]any{"Sequence": map[string]any{"id": s, "type_id": typeID}}
	}
	if v.AddBOS && v.BOS >= 0 {
		single = append(single, mark(v.BOS))
		pair = append(pair, mark(v.BOS))
	}
	single = append(single, seq("A", 0))
	pair = append(pair, seq("A", 0))
	if v.AddEOS && v.EOS >= 0 {
		single = append(single, mark(v.EOS))
		pair = append(pair, mark(v.EOS))
	}
	pair = append(pair, seq("B", 1))
	if len(special) == 0 {
		if v.Model == "gpt2" {
			return map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
		}
		return nil
	}
	return map[string]any{"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special}
}

// spmMerges returns the file's merges, or, for a SentencePiece vocabulary without any,
// the merges its scores imply: every split of a piece into two pieces of the vocabulary,
// ranked by the whole piece's score (transformers' GGUF conversion builds them alike;
// a Python dict keyed by piece, so a repeated piece iterates once, at its first place).
func (v *Vocab) spmMerges(vocab map[string]int) ([][2]string, error) {
	if len(v.Merges) > 0 {
		return splitMerges(v.Merges)
	}
	type merge struct {
		l, r          string
		score, ls, rs float32
	}
	score := make(map[string]float32, len(v.Tokens))
	for i, t := range v.Tokens {
		score[t] = v.Scores[i] // a repeated piece scores as its last entry, as in a Python dict
	}
	var all []merge
	seen := make(map[string]bool, len(v.Tokens))
	for _, piece := range v.Tokens {
		if seen[piece] {
			continue
		}
		seen[piece] = true
		runes := []rune(piece)
		var local []merge
		for k := 1; k < len(runes); k++ {
			l, r := string(runes[:k]), string(runes[k:])
			if _, ok := vocab[l]; !ok {
				continue
			}
			if _, ok := vocab[r]; ok {
				local = append(local, merge{l, r, score[piece], score[l], score[r]})
			}
		}
		// the splits of one piece by their halves' scores, then all by the piece's score,
		// each sort descending and stable
		sort.SliceStable(local, func(a, b int) bool {
			if local[a].ls != local[b].ls {
				return local[a].ls > local[b].ls
			}
			return local[a].rs > local[b].rs
		})
		all = append(all, local...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
	out := make([][2]string, len(all))
	for i, m := range all {
		out[i] = [2]string{m.l, m.r}
	}
	return out, nil
}

// TokenizerConfig builds the tokenizer_config.json: the special tokens by content, whether
// BOS / EOS are added, and the chat template when the file has one.
func (v *Vocab) TokenizerConfig() map[string]any {
	c := map[string]any{"add_bos_token": v.AddBOS, "add_eos_token": v.AddEOS}
	for key, id := range map[string]int{"bos_token": v.BOS, "eos_token": v.EOS, "unk_token": v.UNK, "pad_token": v.PAD} {
		if id >= 0 {
			c[key] = v.Tokens[id]
		}
	}
	if v.ChatTemplate != "" {
		c["chat_template"] = v.ChatTemplate
	}
	return c
}
