package training

import (
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Full presents a model to the training loop with every weight trainable (full
// fine-tuning, pretraining); Save writes a Hugging Face model folder.
type Full struct{ Model model.CausalLM }

// Loss is model.NextTokenLoss.
func (f Full) Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor {
	return model.NextTokenLoss(s, f.Model, ids, targets)
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

// Restore reads back the weights Save wrote.
func (f Full) Restore(dir string) error { return model.RestoreWeights(f.Model, dir) }
