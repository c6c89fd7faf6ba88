package triage

import (
	"context"
	"fmt"
	"regexp"

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
	// negated and seen count, per label, the labelled inputs that hold a negation and
	// all of them (unnegated).
	negated, seen map[string]int
	// options: the labels are the letters (or numbers) of options that every input lists
	// (multiple choice: "A. ...", "(B) ..."); optionRe holds each label's marker.
	options  bool
	optionRe map[string]*regexp.Regexp
	strict   bool // Triager.Strict: every negated input is doubted
}

func newClassificationAnswers(t *task.Task, pool []task.Example) answers {
	c := &classificationAnswers{t: t, pool: pool, labels: newLabelModel(t.Labels, pool), negated: map[string]int{}, seen: map[string]int{}}
	for _, ex := range pool {
		c.seen[ex.Label]++
		if negation.MatchString(ex.Text) {
			c.negated[ex.Label]++
		}
	}
	c.options = c.listsOptions()
	return c
}

// optionMarker matches label l as an option's marker at the start of a line or after a
// space, in either case (shouting repaired is lower-cased): "A. text", "(A) text",
// "a) text", "A: text".
func (c *classificationAnswers) optionMarker(l string) *regexp.Regexp {
	if c.optionRe == nil {
		c.optionRe = map[string]*regexp.Regexp{}
	}
	re := c.optionRe[l]
	if re == nil {
		re = regexp.MustCompile(`(?mi)(^|\s)\(?` + regexp.QuoteMeta(l) + `[.):]\s`)
		c.optionRe[l] = re
	}
	return re
}

// listsOptions says whether the task is multiple choice with its options in the input:
// at least minCalibration labelled inputs, every one but one in fifty listing its own
// label as an option's marker, and the labels short (a letter or number, not a word
// that could begin a sentence).
func (c *classificationAnswers) listsOptions() bool {
	for _, l := range c.t.Labels {
		if len([]rune(l)) > 2 {
			return false
		}
	}
	if len(c.pool) < minCalibration {
		return false
	}
	listed := 0
	for _, ex := range c.pool {
		if c.optionMarker(ex.Label).MatchString(ex.Text) {
			listed++
		}
	}
	return float64(listed) >= optionsListed*float64(len(c.pool))
}

// optionsListed: the share of a multiple-choice task's labelled inputs that list their
// own answer as an option, at or above which the task is taken for one. Measured on
// bench/adaptft's ARC-Easy task (seed 1): all 621 of its labelled inputs do.
const optionsListed = 0.98

// negation matches a word that turns a sentence's meaning round.
var negation = regexp.MustCompile(`(?i)\b(not|never|cannot|nothing|nobody|neither|nor|dont|cant|wont|isnt|doesnt|didnt|aint)\b|n't\b`)

// A negated input whose label's labelled inputs are almost never negated ("how do i not
// change my pin" as change_pin) is taken for a meaning turned round with the label kept:
// the label's smoothed negation rate, (negated + 1/2) / (inputs + 1), below maxNegated,
// over at least minCalibration labelled inputs. Where negation is common in a label
// ("my card is not working") or in the task (Banking77: 26 % of its inputs, SMS spam
// 23 %), nothing is judged. Measured on AdaptFT-Bench's logs (seed 1, go run
// ./bench/adaptft -all -triage-audit): CLINC150 (3 % of its labelled inputs negated) 29 of
// its 40 negation flips caught, 4 of its 1,119 lines without poison called so; Banking77
// 2 more of 43 caught (4 in all), 1 such false alarm; SMS spam none of either.
const maxNegated = 0.02

func (c *classificationAnswers) negatedUnlike(in, label string) (string, bool) {
	if !negation.MatchString(in) {
		return "", false
	}
	n := c.seen[label]
	if c.strict {
		return "the input is negated, and the line would only be replayed: whether " + quote(label) + " survives the negation is more than triage can tell", true
	}
	if n < minCalibration {
		return "", false
	}
	rate := (float64(c.negated[label]) + 0.5) / (float64(n) + 1)
	if rate >= maxNegated {
		return "", false
	}
	return fmt.Sprintf("the input is negated, and %d of the %d labelled inputs of %s are: the negation may turn its meaning away from the label", c.negated[label], n, quote(label)), true
}

func (*classificationAnswers) style() inputStyle { return plainInputs }

func (c *classificationAnswers) beStrict() { c.strict = true }

func (c *classificationAnswers) contradicted(f Failure, in string, nn []text.Hit) (Kind, string) {
	if c.options && !c.optionMarker(f.Label).MatchString(in) {
		return PoisonNoOption, "the answer " + quote(f.Label) + " names an option the input does not list (every labelled input lists its answer's)"
	}
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
	if why, ok := c.negatedUnlike(in, f.Label); ok {
		return PoisonNegated, why
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
