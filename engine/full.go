package engine

import (
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// NextTokenLoss is the mean cross-entropy of m's logits for ids (B, T) against targets
// (B, T), positions whose target is -100 ignored.
func NextTokenLoss(s *torch.Scope, m model.CausalLM, ids, targets *torch.Tensor) *torch.Tensor {
	logits := m.Forward(s, ids)
	V := int64(m.Info().VocabSize)
	return s.CrossEntropy(s.Reshape(logits, -1, V), s.Reshape(targets, -1), -100, torch.ReduceMean)
}

// Full presents a model to the training loop with every weight trainable (full
// fine-tuning); Save writes a Hugging Face model folder.
type Full struct{ Model model.CausalLM }

// Loss is NextTokenLoss.
func (f Full) Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor {
	return NextTokenLoss(s, f.Model, ids, targets)
}

// Concurrent is true: a model's Forward may run on several goroutines at once
// (model.CausalLM).
func (f Full) Concurrent() bool { return true }

// Parameters are all the model's weights.
func (f Full) Parameters() []*torch.Tensor { return f.Model.Parameters() }

// Names are the weights' Hugging Face names.
func (f Full) Names() []string { return f.Model.Names() }

// Device is the model's device.
func (f Full) Device() torch.Device { return f.Model.Device() }

// Save writes the model folder.
func (f Full) Save(dir string) error { return f.Model.Save(dir) }
