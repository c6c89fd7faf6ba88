// Package tokenizer loads Hugging Face tokenizer.json files through the tokenizers Rust
// library (github.com/daulet/tokenizers, built by scripts/setup.sh into
// third_party/lib/libtokenizers.a). Nothing here downloads: files come from model folders.
package tokenizer

/*
#cgo LDFLAGS: -L${SRCDIR}/../../third_party/lib
*/
import "C"

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	tk "github.com/daulet/tokenizers"
)

// Tokenizer encodes text to token ids and back.
type Tokenizer struct {
	t    *tk.Tokenizer
	path string
}

// Load reads a tokenizer.json (or a gzip-compressed one ending in .gz).
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
		}
	}
	// The Rust library reports only that parsing failed; check the JSON first so the error
	// says where.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("tokenizer: %s is not valid JSON: %w", path, err)
	}
	if _, ok := probe["model"]; !ok {
		return nil, fmt.Errorf("tokenizer: %s has no \"model\" section; is it a Hugging Face tokenizer.json?", path)
	}
	t, err := tk.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return &Tokenizer{t: t, path: path}, nil
}

// Encode returns the ids of text; addSpecial adds the tokenizer's special tokens (BOS...)
// as its post-processor defines them. The Rust library reports a failure only by
// returning nothing, and reads text up to its first NUL byte; Encode returns an error in
// both cases instead of fewer ids.
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int, error) {
	if t.t == nil {
		return nil, fmt.Errorf("tokenizer %s: encode after Close", t.path)
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		return nil, fmt.Errorf("tokenizer: the text holds a NUL byte at offset %d (%.40q)", i, text)
	}
	ids := t.t.EncodeWithOptions(text, addSpecial).IDs
	if len(ids) == 0 && strings.TrimSpace(text) != "" {
		return nil, fmt.Errorf("tokenizer %s: encoding %.40q gave no tokens", t.path, text)
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out, nil
}

// Decode turns ids back into text.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	if t.t == nil {
		return ""
	}
	u := make([]uint32, len(ids))
	for i, id := range ids {
		u[i] = uint32(id)
	}
	return t.t.Decode(u, skipSpecial)
}

// VocabSize is the size of the vocabulary including added tokens (0 after Close).
func (t *Tokenizer) VocabSize() int {
	if t.t == nil {
		return 0
	}
	return int(t.t.VocabSize())
}

// Close frees the Rust tokenizer.
func (t *Tokenizer) Close() error {
	if t.t == nil {
		return nil
	}
	err := t.t.Close()
	t.t = nil
	return err
}
