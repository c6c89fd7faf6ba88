package data

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"gopkg.in/yaml.v3"
)

// NanoCard is the machine-readable part of pioneer-nano's model card (the "pioneer:" block
// of README.md's front matter): what its pretraining measured.
type NanoCard struct {
	Params      int64 `yaml:"params"`
	TrainTokens int64 `yaml:"train_tokens"`
	Steps       int   `yaml:"steps"`
	// HeldoutPerplexity is over the whole held-out text (testdata/nano/heldout.txt) in
	// windows of 256 tokens; HeldoutPerplexity16k over its first 16,384 tokens.
	HeldoutPerplexity    float64 `yaml:"heldout_perplexity"`
	HeldoutPerplexity16k float64 `yaml:"heldout_perplexity_first_16384"`
}

// ReadNanoCard parses pioneer-nano's model card.
func ReadNanoCard() (NanoCard, error) {
	b, err := fs.ReadFile(Models, "models/"+NanoModel+"/README.md")
	if err != nil {
		return NanoCard{}, err
	}
	parts := bytes.SplitN(b, []byte("---\n"), 3)
	if len(parts) != 3 || len(parts[0]) != 0 {
		return NanoCard{}, errors.New("pioneer-nano README.md: no YAML front matter")
	}
	var front struct {
		Pioneer NanoCard `yaml:"pioneer"`
	}
	if err := yaml.Unmarshal(parts[1], &front); err != nil {
		return NanoCard{}, fmt.Errorf("pioneer-nano README.md: %w", err)
	}
	if front.Pioneer.HeldoutPerplexity == 0 || front.Pioneer.TrainTokens == 0 {
		return NanoCard{}, errors.New("pioneer-nano README.md: the pioneer: block lacks heldout_perplexity or train_tokens")
	}
	return front.Pioneer, nil
}
