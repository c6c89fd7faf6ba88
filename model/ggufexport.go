package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model/gguf"
)

// ExportGGUF writes m, whose configuration and tokenizer are those of the model folder
// dir, as a GGUF file at path with its matrices stored as t.
func ExportGGUF(m CausalLM, dir, path string, t gguf.Type) error {
	src := gguf.Source{Name: filepath.Base(dir), Names: m.Names()}
	var err error
	if src.Config, err = ReadJSONFile(dir, "config.json", true); err != nil {
		return err
	}
	if src.Generation, err = ReadJSONFile(dir, "generation_config.json", false); err != nil {
		return err
	}
	if src.TokenizerConfig, err = ReadJSONFile(dir, "tokenizer_config.json", false); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json")); err == nil {
		src.TokenizerJSON = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		src.ChatTemplate = string(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if s, ok := src.TokenizerConfig["chat_template"].(string); ok {
		src.ChatTemplate = s
	}
	src.Tensor = func(name string) ([]float32, []int64, error) {
		w := m.Named(name)
		if w == nil {
			return nil, nil, fmt.Errorf("model has no weight %q", name)
		}
		s := torch.NewScope()
		defer s.Close()
		v, err := s.To(w, torch.Float32, torch.CPU).Float32s()
		if err != nil {
			return nil, nil, fmt.Errorf("weight %q: %w", name, err)
		}
		return v, w.Shape(), nil
	}
	b, err := gguf.Export(src, t)
	if err != nil {
		return err
	}
	return b.WriteFile(path)
}

// ReadJSONFile decodes one JSON file of a model folder (config.json...) as a map; a file
// that is absent and not required gives nil.
func ReadJSONFile(dir, name string, required bool) (map[string]any, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}
