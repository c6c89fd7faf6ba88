package triage

import (
	"context"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/model"
)

// classificationAnswers: a logged label is contradicted by near-identical labelled
// inputs that carry another label (and none this one), or by a classifier fitted on the
// labelled data that gives it little probability (classifier.go).
type classificationAnswers struct {
	t      *task.Task
	pool   []task.Example
	labels *labelModel
}

func newClassificationAnswers(t *task.Task, pool []task.Example) answers {
	return &classificationAnswers{t: t, pool: pool, labels: newLabelModel(t.Labels, pool)}
}

func (*classificationAnswers) style() inputStyle { return plainInputs }

func (c *classificationAnswers) contradicted(f Failure, in string, nn []text.Hit) (Kind, string) {
	near, nearOther := false, ""
	for _, h := range nn {
		if h.Sim < 0.7 {
			break
		}
		if l := c.pool[h.I].Label; l == f.Label {
			near = true
		} else if nearOther == "" {
			nearOther = l
		}
	}
	if !near && nearOther != "" {
		return PoisonLabelFlip, "a near-identical example (similarity " + ftoa(nn[0].Sim) + ") is labelled " + quote(nearOther) + ", not " + quote(f.Label)
	}
	if p, best, ok := c.labels.prob(in, f.Label); ok && p < labelFlip(len(c.t.Labels)) {
		return PoisonLabelFlip, "a classifier fitted on the task's labelled data gives " + quote(f.Label) + " probability " + ftoa(p) + " (" + quote(best) + " the most)"
	}
	return "", ""
}

// modelCheck: the deployed model chose the wrong label (that is why the line was
// logged); its scores say nothing more about the logged one.
func (*classificationAnswers) modelCheck(context.Context, model.CausalLM, model.Tokenizer, []Failure, []Verdict, task.EvalOptions) error {
	return nil
}
