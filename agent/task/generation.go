package task

import "github.com/pioneer-ai/pioneer/engine/metrics"

// generation: free text, judged by exact match or ROUGE-L; generated.
type generation struct{}

func (generation) field() string                     { return "{output}" }
func (generation) metrics() []string                 { return []string{"exact_match", "rouge_l", "final_answer"} }
func (generation) constrained() bool                 { return false }
func (generation) balanced() bool                    { return false }
func (generation) validate(*Task) error              { return nil }
func (generation) keys(Example) []string             { return nil }
func (generation) answer(_ *Task, ex Example) string { return ex.Output }

func (generation) same(a, b Example) bool {
	return metrics.Normalize(a.Output) == metrics.Normalize(b.Output)
}

func (generation) check(_ *Task, ex Example) string {
	if ex.Output == "" {
		return `no "output"`
	}
	return ""
}

func (generation) read(_ *Task, s string) (string, []Entity, bool) { return s, nil, true }

// score is ROUGE-L, exact match, or final_answer (the worked solution's final answer,
// metrics.FinalAnswer, matches); each prediction is Correct on an exact match, or with
// final_answer on a matching final answer.
func (generation) score(t *Task, outs []string, exs []Example, res *Result) error {
	var sum float64
	for i, ex := range exs {
		got, _, _ := t.ParseOutput(outs[i])
		exact := metrics.Normalize(got) == metrics.Normalize(ex.Output)
		score := metrics.RougeL(got, ex.Output)
		if t.Metric == "final_answer" {
			want := metrics.FinalAnswer(ex.Output)
			exact = want != "" && metrics.FinalAnswer(got) == want
		}
		if t.Metric == "exact_match" || t.Metric == "final_answer" {
			score = 0
			if exact {
				score = 1
			}
		}
		sum += score
		res.Predictions[i] = Prediction{ID: ex.ID, Output: got, FormatOK: true, Correct: exact, Score: score}
	}
	res.Value = sum / float64(len(exs))
	return nil
}

// errors: a free-form answer is wrong as a whole.
func (generation) errors(Example, Example, bool) []Error {
	return []Error{{ID: "generation", Kind: WrongOutputs}}
}

func (generation) exercises(Error, Example) bool { return true }

func (generation) shows(_ Error, _ Example, p Prediction) bool { return !p.Correct }
