package task

import (
	"context"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/metrics"
	"github.com/pioneer-ai/pioneer/internal/sandbox"
)

// generation: free text, judged by exact match or ROUGE-L; generated.
type generation struct{}

func (generation) field() string { return "{output}" }
func (generation) metrics() []string {
	return []string{"exact_match", "rouge_l", "final_answer", "pass_at_1"}
}
func (generation) constrained() bool                 { return false }
func (generation) balanced() bool                    { return false }
func (generation) validate(*Task) error              { return nil }
func (generation) keys(Example) []string             { return nil }
func (generation) answer(_ *Task, ex Example) string { return ex.Output }

func (generation) same(a, b Example) bool {
	return metrics.Normalize(a.Output) == metrics.Normalize(b.Output)
}

func (generation) check(t *Task, ex Example) string {
	if ex.Output == "" {
		return `no "output"`
	}
	if t.Metric == "pass_at_1" && len(ex.Tests) == 0 {
		return `no "tests" (pass_at_1 runs the answer against them)`
	}
	return ""
}

func (generation) read(_ *Task, s string) (string, []Entity, bool) { return s, nil, true }

// score is ROUGE-L, exact match, final_answer (the worked solution's final answer,
// metrics.FinalAnswer, matches) or pass_at_1 (the answer, a program, passes the
// example's tests in internal/sandbox); each prediction is Correct on an exact match, with
// final_answer on a matching final answer, with pass_at_1 when its tests pass.
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
		if t.Metric == "pass_at_1" {
			r, err := sandbox.Python(context.Background(), got+"\n\n"+strings.Join(ex.Tests, "\n")+"\n", sandbox.Limits{})
			if err != nil {
				return fmt.Errorf("pass_at_1, example %s: %w", ex.ID, err)
			}
			exact = r.Passed
		}
		if t.Metric == "exact_match" || t.Metric == "final_answer" || t.Metric == "pass_at_1" {
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

// errors: where the expected answer is worked to a final answer (metrics.FinalAnswer),
// one missing or wrong; an answer under half or over twice the expected length in words
// (cut short, running on); otherwise wrong as a whole.
func (generation) errors(want, got Example, _ bool) []Error {
	var out []Error
	if w := metrics.FinalAnswer(want.Output); w != "" {
		switch g := metrics.FinalAnswer(got.Output); {
		case g == "":
			out = append(out, Error{ID: "missing_answer", Kind: MissingAnswer})
		case g != w:
			out = append(out, Error{ID: "wrong_answer", Kind: WrongAnswer})
		}
	}
	switch length(got.Output, want.Output) {
	case -1:
		out = append(out, Error{ID: "too_short", Kind: TooShort})
	case 1:
		out = append(out, Error{ID: "too_long", Kind: TooLong})
	}
	if len(out) == 0 {
		out = append(out, Error{ID: "generation", Kind: WrongOutputs})
	}
	return out
}

// length compares an answer's length in words with the expected one's: -1 under half,
// 1 over twice, 0 between.
func length(got, want string) int {
	g, w := len(strings.Fields(got)), len(strings.Fields(want))
	switch {
	case 2*g < w:
		return -1
	case g > 2*w:
		return 1
	}
	return 0
}

// exercises: a final answer can be missed or wrong only where one is expected.
func (generation) exercises(e Error, ex Example) bool {
	if e.Kind == MissingAnswer || e.Kind == WrongAnswer {
		return metrics.FinalAnswer(ex.Output) != ""
	}
	return true
}

func (generation) shows(e Error, ex Example, p Prediction) bool {
	switch e.Kind {
	case MissingAnswer:
		return metrics.FinalAnswer(p.Output) == "" && metrics.FinalAnswer(ex.Output) != ""
	case WrongAnswer:
		g, w := metrics.FinalAnswer(p.Output), metrics.FinalAnswer(ex.Output)
		return g != "" && w != "" && g != w
	case TooShort:
		return length(p.Output, ex.Output) < 0
	case TooLong:
		return length(p.Output, ex.Output) > 0
	}
	return !p.Correct
}
