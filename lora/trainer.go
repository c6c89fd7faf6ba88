package lora

import (
	"path/filepath"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Trainer presents a model with a set of adapters to the training loop (engine/training): only the adapter weights are parameters, and Save writes the adapter in PEFT's
// format. Dropout applies while gradients are recorded (training), not in evaluation.
type Trainer struct {
	Model model.CausalLM
	Set   *Set
}

// Loss is the mean next-token cross-entropy of ids (B, T) against targets (B, T), -100
// ignored.
func (t Trainer) Loss(s *torch.Scope, ids, targets *torch.Tensor) *torch.Tensor {
	if t.Set.Config.Dropout > 0 { // without dropout Training changes nothing: leave it, unraced
		t.Set.Training = torch.GradEnabled()
	}
	return model.NextTokenLoss(s, t.Model, ids, targets)
}

// Concurrent reports whether Loss may run on several goroutines at once (engine/training then
// shares a CPU batch's rows between threads): without dropout, which draws from the set's
// one generator in an order that would depend on the threads.
func (t Trainer) Concurrent() bool { return t.Set.Config.Dropout == 0 }

// Parameters are the adapters' A and B matrices.
func (t Trainer) Parameters() []*torch.Tensor { return t.Set.Parameters() }

// Names are PEFT's names for Parameters.
func (t Trainer) Names() []string { return t.Set.Names() }

// Device is the model's device.
func (t Trainer) Device() torch.Device { return t.Model.Device() }

// Generators are the dropout generator's, checkpointed by the training loop.
func (t Trainer) Generators() []*torch.Generator { return []*torch.Generator{t.Set.gen} }

// Save writes the adapter (adapter_config.json, adapter_model.safetensors).
func (t Trainer) Save(dir string) error { return t.Set.Save(dir) }

// Restore reads back the adapter weights Save wrote.
func (t Trainer) Restore(dir string) error {
	return torch.LoadInto(filepath.Join(dir, WeightsFile), t.Set.Names(), t.Set.Parameters())
}
