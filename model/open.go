package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model/chat"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// Pretrained is a model opened for use: the network with its weights, its tokenizer,
// generation defaults, the special token ids every caller needs and (on demand) its chat
// template. Open makes one; Close frees it.
type Pretrained struct {
	Name       string // what Open was given (a folder, or a bundled model's name)
	Dir        string // the model folder read (a bundled model's is written to the user cache)
	LM         CausalLM
	Tokenizer  *tokenizer.Tokenizer
	Generation GenerationConfig
	// EOS are the ids that end a sequence (generation_config.json's, else config.json's);
	// empty when the folder names none.
	EOS []int
	// Pad fills padding: pad_token_id, else the first EOS id, else 0. It is never a
	// target and padded positions are masked, so any id in the vocabulary serves.
	Pad int

	tplOnce sync.Once
	tpl     *chat.Template
	tplErr  error
}

// OpenOptions say where and how a model is opened.
type OpenOptions struct {
	Device torch.Device
	DType  torch.DType // 0: float32
}

// Open opens a model: a Hugging Face folder (config.json, safetensors weights,
// tokenizer.json), a GGUF file (llama.cpp's and ollama's format), the name of a model the
// binary embeds (data.BundledModels) or of one a script installs (data.InstalledModels). The
// tokenizer must fit the model's vocabulary.
func Open(ref string, o OpenOptions) (*Pretrained, error) {
	dir, err := Resolve(ref)
	if err != nil {
		return nil, err
	}
	if o.DType == 0 {
		o.DType = torch.Float32
	}
	p := &Pretrained{Name: ref, Dir: dir, Pad: -1}
	if p.Generation, err = ReadGenerationConfig(dir); err != nil {
		return nil, err
	}
	if p.Tokenizer, err = tokenizer.Load(filepath.Join(dir, "tokenizer.json")); err != nil {
		return nil, fmt.Errorf("model %s: %w", ref, err)
	}
	if p.LM, err = Load(dir, o.Device, o.DType); err != nil {
		p.Tokenizer.Close()
		return nil, err
	}
	if n, v := p.Tokenizer.VocabSize(), p.LM.Info().VocabSize; n > v {
		p.Close()
		return nil, fmt.Errorf("%s: tokenizer.json has %d tokens but the model's vocabulary is %d: they do not belong together", dir, n, v)
	}
	p.EOS = p.Generation.EosTokenIDs
	p.Pad = PadID(p.Generation)
	return p, nil
}

// Resolve turns a --model argument (a folder, a GGUF file, a bundled or installed model's
// name) into the model folder to read.
func Resolve(ref string) (string, error) {
	path, err := data.ResolveModel(ref)
	if err != nil {
		return "", err
	}
	dir, err := Folder(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", ref, err)
	}
	return dir, nil
}

// Folder returns the model folder a resolved --model path stands for: a folder as it is,
// a GGUF file's cached Hugging Face folder (written on first use), and an error for
// anything else.
func Folder(path string) (string, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", err
	case st.IsDir():
		return path, nil
	case IsGGUF(path):
		return ggufFolder(path)
	}
	return "", fmt.Errorf("%s is not a folder (a Hugging Face model folder) or a GGUF file; bundled models: %v, installable: %s",
		path, data.BundledModels(), data.SmolLM2)
}

// PadID is the padding id a generation config implies: pad_token_id, else the first
// end-of-sequence id, else 0.
func PadID(g GenerationConfig) int {
	switch {
	case g.PadTokenID >= 0:
		return g.PadTokenID
	case len(g.EosTokenIDs) > 0:
		return g.EosTokenIDs[0]
	}
	return 0
}

// FirstEOS is the first end-of-sequence id, the one appended to training targets; -1
// when the model names none.
func (p *Pretrained) FirstEOS() int {
	if len(p.EOS) == 0 {
		return -1
	}
	return p.EOS[0]
}

// ChatTemplate is the model's chat template (tokenizer_config.json's chat_template, or
// chat_template.jinja), read on first use; an error wrapping chat.ErrNoTemplate when the
// folder has none.
func (p *Pretrained) ChatTemplate() (*chat.Template, error) {
	p.tplOnce.Do(func() {
		p.tpl, p.tplErr = chat.Load(filepath.Join(p.Dir, "tokenizer_config.json"))
		if errors.Is(p.tplErr, os.ErrNotExist) {
			p.tplErr = fmt.Errorf("%s has no tokenizer_config.json: %w", p.Dir, chat.ErrNoTemplate)
		}
	})
	return p.tpl, p.tplErr
}

// LoadWeights puts the weights of dir (p's own folder, to undo a fine-tune of every
// weight, or a model fine-tuned from it) in place of p.LM's, on dev in p.LM's type; the
// old ones are freed.
func (p *Pretrained) LoadWeights(dir string, dev torch.Device) error {
	m, err := Load(dir, dev, p.LM.DType())
	if err != nil {
		return err
	}
	p.LM.Close()
	p.LM = m
	return nil
}

// Close frees the weights and the tokenizer.
func (p *Pretrained) Close() {
	if p.LM != nil {
		p.LM.Close()
	}
	if p.Tokenizer != nil {
		p.Tokenizer.Close()
	}
}
