package gguf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// WriteCompanions writes the small files of a Hugging Face folder that a GGUF file
// implies into dir: config.json, generation_config.json, tokenizer.json and
// tokenizer_config.json (with the chat template). The weights stay in the GGUF file. A
// file without tokenizer metadata gets no tokenizer files.
func (m *Model) WriteCompanions(dir string) error {
	files := map[string]any{"config.json": m.Config, "generation_config.json": m.Generation}
	var tok []byte
	if m.File.String("tokenizer.ggml.model") != "" {
		v, err := m.File.Vocab()
		if err != nil {
			return err
		}
		if tok, err = v.TokenizerJSON(); err != nil {
			return fmt.Errorf("%s: %w", m.File.Path, err)
		}
		if n := len(v.Tokens); int64(n) > m.Config["vocab_size"].(int64) {
			return fmt.Errorf("gguf: %s: %d tokens but a vocabulary of %d", m.File.Path, n, m.Config["vocab_size"])
		}
		files["tokenizer_config.json"] = v.TokenizerConfig()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		b, err := json.MarshalIndent(content, "", "  ")
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), append(b, '\n')); err != nil {
			return err
		}
	}
	if tok == nil {
		return nil
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "tokenizer.json"), tok)
}
