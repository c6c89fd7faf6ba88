package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// CompanionFiles are the files of a Hugging Face model folder besides config.json and
// the weights: the tokenizer, its special tokens and chat template, and the generation
// defaults. A folder of fine-tuned weights needs them to be usable on its own.
var CompanionFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"}

// CopyCompanionFiles copies those CompanionFiles that exist in from into to (each written
// atomically). A file from lacks is skipped; any other error is returned.
func CopyCompanionFiles(from, to string) error {
	for _, f := range CompanionFiles {
		b, err := os.ReadFile(filepath.Join(from, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(to, f), b); err != nil {
			return fmt.Errorf("copy %s: %w", f, err)
		}
	}
	return nil
}

// IsModelDir reports whether dir holds a model: a config.json and safetensors weights
// (one file or an index of shards).
func IsModelDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	for _, w := range []string{"model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, w)); err == nil {
			return true
		}
	}
	return false
}

// RestoreWeights copies the weights m.Save wrote to dir (model.safetensors) back into m's
// parameters: how a training run resumes from a checkpoint of every weight.
func RestoreWeights(m CausalLM, dir string) error {
	return torch.LoadInto(filepath.Join(dir, "model.safetensors"), m.Names(), m.Parameters())
}
