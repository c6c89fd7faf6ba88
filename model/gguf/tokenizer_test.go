package gguf

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// The tokenizer tests take real vocabularies (../shared/data, the tokenizers Go module),
// store them as GGUF tokenizer metadata the way llama.cpp's converter does, read them
// back, rebuild a tokenizer.json and compare its ids with the original tokenizer's
// reference ids.

const sharedTokenizers = "../../../shared/data/tokenizers"

// spec is a vocabulary to store as tokenizer.ggml.* metadata.
type spec struct {
	model, pre string
	tokens     []string
	types      []int32
	scores     []float32
	merges     []string
	bos        int
	addBOS     bool
}

// roundTrip writes s as a GGUF file, reads it back and returns its tokenizer.
func roundTrip(t *testing.T, s spec) *tokenizer.Tokenizer {
	t.Helper()
	b := NewBuilder()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Set("general.architecture", "llama"))
	must(b.Set("tokenizer.ggml.model", s.model))
	if s.pre != "" {
		must(b.Set("tokenizer.ggml.pre", s.pre))
	}
	must(b.Set("tokenizer.ggml.tokens", s.tokens))
	must(b.Set("tokenizer.ggml.token_type", s.types))
	if s.scores != nil {
		must(b.Set("tokenizer.ggml.scores", s.scores))
	}
	if s.merges != nil {
		must(b.Set("tokenizer.ggml.merges", s.merges))
	}
	if s.bos >= 0 {
		must(b.Set("tokenizer.ggml.bos_token_id", uint32(s.bos)))
	}
	must(b.Set("tokenizer.ggml.add_bos_token", s.addBOS))
	dir := t.TempDir()
	path := filepath.Join(dir, "vocab.gguf")
	must(b.WriteFile(path))
	f, err := Open(path)
	must(err)
	defer f.Close()
	v, err := f.Vocab()
	must(err)
	js, err := v.TokenizerJSON()
	must(err)
	must(os.WriteFile(filepath.Join(dir, "tokenizer.json"), js, 0o644))
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	must(err)
	t.Cleanup(func() { tok.Close() })
	return tok
}

// hfJSON reads a Hugging Face tokenizer.json (optionally gzipped) as a spec: the vocabulary
// by id, its merges, added tokens as control (special) or user-defined tokens, and byte
// pieces <0xXX> as byte tokens.
func hfJSON(t *testing.T, path, model, pre string) spec {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Skip("tokenizer not present:", err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(fh); err != nil {
			t.Fatal(err)
		}
	}
	var j struct {
		Model struct {
			Vocab  map[string]int  `json:"vocab"`
			Merges json.RawMessage `json:"merges"`
		} `json:"model"`
		Added []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	if err := json.NewDecoder(r).Decode(&j); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, id := range j.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range j.Added {
		n = max(n, a.ID+1)
	}
	s := spec{model: model, pre: pre, tokens: make([]string, n), types: make([]int32, n), bos: -1}
	byteTok := regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)
	for tok, id := range j.Model.Vocab {
		s.tokens[id], s.types[id] = tok, tokenNormal
		if model == "llama" && byteTok.MatchString(tok) {
			s.types[id] = tokenByte
		}
	}
	for _, a := range j.Added {
		s.tokens[a.ID], s.types[a.ID] = a.Content, tokenUserDefined
		if a.Special {
			s.types[a.ID] = tokenControl
		}
		if a.Content == "<unk>" {
			s.types[a.ID] = tokenUnknown
		}
	}
	for i, tok := range s.tokens {
		if tok == "" {
			s.tokens[i], s.types[i] = "[PAD"+string(rune('0'+i%10))+"]", tokenUnused
		}
	}
	if s.merges, err = joinMerges(j.Model.Merges); err != nil {
		t.Fatal(err)
	}
	return s
}

type golden struct {
	Text       string `json:"text"`
	IDs        []int  `json:"ids"`
	IDsSpecial []int  `json:"ids_special"`
	GPT2       []int  `json:"gpt2"`
	Qwen3      []int  `json:"qwen3"`
	SP32k      []int  `json:"sp32k_lenml_llama2pkg"`
}

func readGolden(t *testing.T, path string) []golden {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skip("golden encodings not present:", err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	if len(out) < 10 {
		t.Fatalf("%s: %d lines", path, len(out))
	}
	return out
}

func expectIDs(t *testing.T, tok *tokenizer.Tokenizer, text string, addSpecial bool, want []int) {
	t.Helper()
	got, err := tok.Encode(text, addSpecial)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%q: %v, reference %v", text, got, want)
	}
}

func TestGPT2VocabularyFromGGUF(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sharedTokenizers, "gpt2", "encoder.json"))
	if err != nil {
		t.Skip("gpt2 files not present:", err)
	}
	var enc map[string]int
	if err := json.Unmarshal(b, &enc); err != nil {
		t.Fatal(err)
	}
	s := spec{model: "gpt2", pre: "gpt2", tokens: make([]string, len(enc)), types: make([]int32, len(enc)), bos: -1}
	for tok, id := range enc {
		s.tokens[id], s.types[id] = tok, tokenNormal
	}
	s.types[50256] = tokenControl
	bpe, err := os.ReadFile(filepath.Join(sharedTokenizers, "gpt2", "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(bpe)), "\n")[1:] { // after "#version: 0.2"
		s.merges = append(s.merges, line)
	}
	tok := roundTrip(t, s)
	for _, g := range readGolden(t, filepath.Join(sharedTokenizers, "golden_encodings.jsonl")) {
		expectIDs(t, tok, g.Text, false, g.GPT2)
	}
}

func TestQwen2PreTokenizerFromGGUF(t *testing.T) {
	tok := roundTrip(t, hfJSON(t, filepath.Join(sharedTokenizers, "qwen3", "tokenizer.json.gz"), "gpt2", "qwen2"))
	for _, g := range readGolden(t, filepath.Join(sharedTokenizers, "golden_encodings.jsonl")) {
		expectIDs(t, tok, g.Text, false, g.Qwen3)
	}
	expectIDs(t, tok, "<|im_start|>user\nhi<|im_end|>", false, []int{151644, 872, 198, 6023, 151645})
}

func TestLlama3PreTokenizerFromGGUF(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/daulet/tokenizers").Output()
	if err != nil {
		t.Skip("cannot locate the tokenizers module:", err)
	}
	s := hfJSON(t, filepath.Join(strings.TrimSpace(string(out)), "test", "data", "Meta-Llama-3-8B-Instruct.json"), "gpt2", "llama-bpe")
	s.bos, s.addBOS = 128000, true
	tok := roundTrip(t, s)
	for _, g := range readGolden(t, "../../testdata/tokenizers/llama3_golden.jsonl") {
		expectIDs(t, tok, g.Text, false, g.IDs)
		expectIDs(t, tok, g.Text, true, g.IDsSpecial)
	}
}

func TestSentencePieceWithMergesFromGGUF(t *testing.T) {
	s := hfJSON(t, filepath.Join(sharedTokenizers, "sp32k_lenml_llama2pkg", "tokenizer.json"), "llama", "")
	s.bos, s.addBOS = 1, true
	tok := roundTrip(t, s)
	for _, g := range readGolden(t, filepath.Join(sharedTokenizers, "golden_encodings.jsonl")) {
		expectIDs(t, tok, g.Text, true, g.SP32k)
	}
}

// TestSentencePieceFromScores stores the Llama 2 vocabulary as llama.cpp does (pieces,
// scores, token types; no merges) and compares with the sentencepiece package's ids.
func TestSentencePieceFromScores(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sharedTokenizers, "llama2", "tokenizer.model"))
	if err != nil {
		t.Skip("llama2 tokenizer.model not present:", err)
	}
	s := spec{model: "llama", bos: 1}
	for _, p := range sentencePieces(t, b) {
		s.tokens = append(s.tokens, p.piece)
		s.scores = append(s.scores, p.score)
		s.types = append(s.types, p.typ) // sentencepiece's types: 1 normal, 2 unknown, 3 control, 6 byte, as llama.cpp's
	}
	if len(s.tokens) != 32000 || s.tokens[15043] != "▁Hello" {
		t.Fatalf("%d pieces; 15043 = %q", len(s.tokens), s.tokens[15043])
	}
	tok := roundTrip(t, s)
	for _, g := range readGolden(t, "../../testdata/gguf/llama2_sentencepiece.jsonl") {
		expectIDs(t, tok, g.Text, false, g.IDs)
	}
}

type piece struct {
	piece string
	score float32
	typ   int32
}

// sentencePieces reads the pieces of a SentencePiece ModelProto: field 1 (repeated
// SentencePiece: 1 piece, 2 score, 3 type).
func sentencePieces(t *testing.T, b []byte) []piece {
	t.Helper()
	var out []piece
	fields(t, b, func(num int, wire int, v []byte, _ uint64) {
		if num != 1 || wire != 2 {
			return
		}
		p := piece{typ: 1}
		fields(t, v, func(num int, wire int, v []byte, x uint64) {
			switch {
			case num == 1 && wire == 2:
				p.piece = string(v)
			case num == 2 && wire == 5:
				p.score = math.Float32frombits(uint32(x))
			case num == 3 && wire == 0:
				p.typ = int32(x)
			}
		})
		out = append(out, p)
	})
	return out
}

// fields walks a protobuf message: each field's number, wire type, and bytes (length-
// delimited) or value (varint, fixed32, fixed64).
func fields(t *testing.T, b []byte, fn func(num, wire int, v []byte, x uint64)) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatal("bad protobuf key")
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			x, n := binary.Uvarint(b)
			if n <= 0 {
				t.Fatal("bad varint")
			}
			fn(num, wire, nil, x)
			b = b[n:]
		case 1:
			fn(num, wire, nil, binary.LittleEndian.Uint64(b))
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatal("bad length")
			}
			fn(num, wire, b[n:n+int(l)], 0)
			b = b[n+int(l):]
		case 5:
			fn(num, wire, nil, uint64(binary.LittleEndian.Uint32(b)))
			b = b[4:]
		default:
			t.Fatalf("wire type %d", wire)
		}
	}
}

// TestExportSentencePieceTokenizer writes a SentencePiece-style tokenizer.json (BPE with
// byte fallback) as GGUF metadata, as export does, and reads it back: with the merges it
// stores, and without them (as llama.cpp reads it: pieces ranked by their scores), the
// rebuilt tokenizer gives the reference ids of the golden strings.
func TestExportSentencePieceTokenizer(t *testing.T) {
	dir := filepath.Join(sharedTokenizers, "sp32k_lenml_llama2pkg")
	js, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Skip("tokenizer not present:", err)
	}
	var cfg map[string]any
	cb, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil || json.Unmarshal(cb, &cfg) != nil {
		t.Fatal("tokenizer_config.json:", err)
	}
	b := NewBuilder()
	if err := b.Set("general.architecture", "llama"); err != nil {
		t.Fatal(err)
	}
	if err := vocabMetadata(b, Source{TokenizerJSON: js, TokenizerConfig: cfg}, 32000); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vocab.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m := f.String("tokenizer.ggml.model"); m != "llama" {
		t.Fatalf("tokenizer.ggml.model %q, want llama", m)
	}
	types, _ := f.Get("tokenizer.ggml.token_type")
	ty := types.Data.([]int32)
	if ty[0] != tokenUnknown || ty[1] != tokenControl || ty[3] != tokenByte || ty[1000] != tokenNormal {
		t.Fatalf("token types of <unk>, <s>, <0x00>, a piece: %d %d %d %d", ty[0], ty[1], ty[3], ty[1000])
	}
	v, err := f.Vocab()
	if err != nil {
		t.Fatal(err)
	}
	if !v.AddSpacePrefix || !v.AddBOS || v.BOS != 1 {
		t.Fatalf("space prefix %v, add BOS %v, BOS %d", v.AddSpacePrefix, v.AddBOS, v.BOS)
	}
	goldens := readGolden(t, filepath.Join(sharedTokenizers, "golden_encodings.jsonl"))
	for _, form := range []string{"with merges", "scores only"} {
		if form == "scores only" {
			v.Merges = nil
		}
		js, err := v.TokenizerJSON()
		if err != nil {
			t.Fatal(err)
		}
		tdir := t.TempDir()
		if err := os.WriteFile(filepath.Join(tdir, "tokenizer.json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.Load(filepath.Join(tdir, "tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range goldens {
			ids, err := tok.Encode(g.Text, true)
			if err != nil || !slices.Equal(ids, g.SP32k) {
				t.Errorf("%s: %q: %v, want %v (%v)", form, g.Text, ids, g.SP32k, err)
			}
		}
		tok.Close()
	}
}
