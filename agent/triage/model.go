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

// ModelCheck is triage's second look, with the deployed model m, at the extraction
// failures it let through whose entity types the type model already doubts: the deployed
// model's scores for each type of their entities; verdicts are updated in place.
func (tr *Triager) ModelCheck(ctx context.Context, m model.CausalLM, tok model.Tokenizer, failures []Failure, verdicts []Verdict, o task.EvalOptions) error {
	if tr.t.Type != task.Extraction {
		return nil
	}
	var idx []int
	var exs []task.Example
	var doubts [][]float64
	for i, v := range verdicts {
		if v.Class == Poison {
			continue
		}
		ex := failures[i].Example()
		if v.Cleaned != "" {
			ex.Text = v.Cleaned
		}
		d := tr.typeDoubts(ex)
		if d == nil {
			continue
		}
		idx, exs, doubts = append(idx, i), append(exs, ex), append(doubts, d)
	}
	if len(exs) == 0 {
		return nil
	}
	scores, err := tr.t.EntityTypeScores(ctx, m, tok, exs, o)
	if err != nil {
		return err
	}
	for k, i := range idx {
		if reason := tr.entityModelCheck(exs[k], doubts[k], scores[k]); reason != "" {
			verdicts[i] = Verdict{ID: failures[i].ID, Line: failures[i].Line, Class: Poison, Kind: PoisonLabelFlip, Reason: reason}
		}
	}
	return nil
}
