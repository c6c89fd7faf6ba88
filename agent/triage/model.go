package triage

import (
	"context"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/model"
)

// likelierMargin: a spelling correction is made when the base model gives the corrected
// sentence at least this many nats more log-probability than the sentence as logged.
// Chosen with pioneer-nano as the judge, on 1,500 validation sentences of CoNLL-2003 and
// CLINC150 each, clean and with one slip planted in each (TestLikelier measures a
// sample): of the corrections the data's vocabulary proposes for clean CoNLL-2003 text
// (149, one in ten sentences), it lets 54 through; of the planted slips it would
// repair, it keeps 98 % (CoNLL-2003) and 93 % (CLINC150). A margin of 0 keeps 99 % and
// 96 % but lets 73 false corrections through. A fine-tuned deployment is a worse
// judge: fully fine-tuned for CoNLL-2003, it lets 90 through and keeps 93 %. (Measured
// before correction refused inflections of a known word, which removes a few more.)
const likelierMargin = 2

// Likelier returns triage's language-model check of a spelling correction: m's
// log-probability of each sentence after a start token. A scoring error is kept in
// *errp (the first one) and the correction refused.
func Likelier(m model.CausalLM, tok model.Tokenizer, start int, errp *error) func(before, after string) bool {
	return func(before, after string) bool {
		if *errp != nil {
			return false
		}
		a, err := tok.Encode(before, false)
		if err != nil {
			*errp = err
			return false
		}
		b, err := tok.Encode(after, false)
		if err != nil {
			*errp = err
			return false
		}
		if n := m.Info().MaxPositions - 1; len(a) > n || len(b) > n {
			return false // longer than the model reads: leave the text as logged
		}
		sc, err := infer.Score(m, [][]int{{start}, {start}}, [][]int{a, b}, 2)
		if err != nil {
			*errp = err
			return false
		}
		return sc[1].LogProb-sc[0].LogProb >= likelierMargin
	}
}

// ModelCheck is triage's second look, with the deployed model m, at the failures it let
// through, where the task's type has one (extraction: the entity types the type model
// already doubts, scored by the deployed model); verdicts are updated in place.
func (tr *Triager) ModelCheck(ctx context.Context, m model.CausalLM, tok model.Tokenizer, failures []Failure, verdicts []Verdict, o task.EvalOptions) error {
	return tr.answers.modelCheck(ctx, m, tok, failures, verdicts, o)
}
