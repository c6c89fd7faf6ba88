package model

import "github.com/pioneer-ai/pioneer/engine/torch"

// NextTokenLoss is the mean cross-entropy of m's logits for ids (B, T) against targets
// (B, T), positions whose target is -100 ignored.
func NextTokenLoss(s *torch.Scope, m CausalLM, ids, targets *torch.Tensor) *torch.Tensor {
	logits := m.Forward(s, ids)
	V := int64(m.Info().VocabSize)
	return s.CrossEntropy(s.Reshape(logits, -1, V), s.Reshape(targets, -1), -100, torch.ReduceMean)
}
