package triage

import (
	"context"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/model"
)

// answers is what triage knows of one task type's answers: what in the labelled data
// contradicts a logged answer, and how the type's inputs read. A type with none gets the
// checks every type shares; giving a type one is a file of its own here
// (classification.go, extraction.go, generation.go) and a line in answerChecks.
type answers interface {
	// contradicted says why the labelled data contradicts f's expected answer, and
	// what kind of poison that makes it ("" when nothing does). f.Input is normalised;
	// in is it repaired, nn its nearest labelled examples.
	contradicted(f Failure, in string, nn []text.Hit) (Kind, string)
	// modelCheck is the second look with the deployed model at the failures triage let
	// through (Triager.ModelCheck); verdicts are updated in place.
	modelCheck(ctx context.Context, m model.CausalLM, tok model.Tokenizer, failures []Failure, verdicts []Verdict, o task.EvalOptions) error
	style() inputStyle
}

// respeller is the answers of a type whose expected answer quotes the input (extraction's
// entity spans): respell repairs the input where a quoted span occurs in it only
// misspelt, and says whether it did.
type respeller interface {
	respell(f Failure, in string) (string, bool)
}

// strictAnswers is the answers of a type with checks of its own that Triager.Strict
// tightens (classification's negation check).
type strictAnswers interface {
	beStrict()
}

// inputStyle is how a task type's inputs read, as the checks every type shares need to
// know.
type inputStyle struct {
	// minSimilarity: an input no labelled example is this similar to is off-domain.
	minSimilarity float64
	// foreignKnown: a sentence with fewer of its words in the labelled data than this
	// is foreign to the task (foreignPassage).
	foreignKnown float64
	// names: capitalised words are names, what is labelled (no shouting repaired, no
	// capitalised word taken for a slip).
	names bool
}

// plainInputs are short requests in ordinary words: nothing alike in the data is a
// strong sign, a quarter of a sentence's words known makes it the task's.
var plainInputs = inputStyle{minSimilarity: 0.12, foreignKnown: 0.25}

// answerChecks make the answers of the task types triage knows more of.
var answerChecks = map[task.Type]func(t *task.Task, pool []task.Example) answers{
	task.Classification: newClassificationAnswers,
	task.Extraction:     newExtractionAnswers,
	task.Generation:     newGenerationAnswers,
}

// noAnswers is a type's answers triage knows nothing of.
type noAnswers struct{}

func (noAnswers) contradicted(Failure, string, []text.Hit) (Kind, string) { return "", "" }
func (noAnswers) style() inputStyle                                       { return plainInputs }
func (noAnswers) modelCheck(context.Context, model.CausalLM, model.Tokenizer, []Failure, []Verdict, task.EvalOptions) error {
	return nil
}
