package triage

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/model"
)

// Poison kinds of free-form answers.
const (
	PoisonArithmetic Kind = "wrong_arithmetic"      // a worked step's calculation is wrong
	PoisonUnworked   Kind = "answer_not_worked_out" // the final answer is no number the working reached
)

// Poison kind of a free-form answer about something else.
const PoisonUnrelated Kind = "answer_unrelated_to_input"

// Poison kind of a free-form answer with a number its input does not give, in a task
// whose answers take their numbers from their inputs (summaries, not worked sums).
const PoisonNumberNotInInput Kind = "number_not_in_input"

// generationAnswers checks what a free-form answer can be checked against without the
// truth: how much of it the input grounds, and a worked answer's own arithmetic.
// GSM8K's answers annotate each step as <<48/2=24>> and end in "#### N"; in its 7,473
// training answers every annotated step is right and the final number appears in the
// working in all but 16 (0.2 %).
type generationAnswers struct {
	noAnswers
	// minGrounding: an expected answer less grounded in its input than this (grounding)
	// is about another input; the grounding that only 1 % of the labelled answers fall
	// below, 0 (no check) with fewer than minCalibration of them.
	minGrounding float64
	// numbersFromInput: the task's answers take their numbers from their inputs (at
	// least numbersGrounded of the labelled answers that hold a number, over at least
	// minNumberAnswers of them).
	numbersFromInput bool
}

func newGenerationAnswers(_ *task.Task, pool []task.Example) answers {
	var gs []float64
	withNumbers, grounded := 0, 0
	for _, ex := range pool {
		if strings.TrimSpace(ex.Output) != "" && strings.TrimSpace(ex.Text) != "" {
			gs = append(gs, grounding(ex.Output, ex.Text))
			if len(integers(ex.Output)) > 0 {
				withNumbers++
				if missingNumber(ex.Output, ex.Text) == "" {
					grounded++
				}
			}
		}
	}
	if len(gs) < minCalibration {
		return generationAnswers{}
	}
	slices.Sort(gs)
	g := generationAnswers{minGrounding: gs[int(ownInputsQuantile*float64(len(gs)-1))]}
	g.numbersFromInput = withNumbers >= minNumberAnswers && float64(grounded) >= numbersGrounded*float64(withNumbers)
	return g
}

// numbersGrounded: the share of a task's labelled answers with numbers whose every
// number their input gives, above which an answer with a number its input lacks is
// poison. Measured on SAMSum's validation and test splits (bench/adaptft's SAMSum pool):
// 403 of the 413 summaries with a number (97.6 %) take every one from the dialogue (its
// digits, or its number words up to twenty); GSM8K's worked answers compute theirs (7 of
// its 7,473 training answers take every number from the question).
const numbersGrounded = 0.95

// minNumberAnswers: with fewer labelled answers holding a number, the share above is not
// measured (at 20, 0.95 allows one answer with a number of its own). Fewer than
// minCalibration because answers with numbers are a part of the data: a quarter of
// SAMSum's summaries, 36 of the 153 that bench/adaptft's SAMSum deployment has.
const minNumberAnswers = 20

var integerRe = regexp.MustCompile(`\d+`)

// integers are the whole numbers written in s in digits, as their values ("08" is 8;
// "4.30" and "4:30" both 4 and 30).
func integers(s string) []string {
	var out []string
	for _, d := range integerRe.FindAllString(s, -1) {
		if t := strings.TrimLeft(d, "0"); t != "" {
			out = append(out, t)
		} else {
			out = append(out, "0")
		}
	}
	return out
}

var numberWords = strings.Fields("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen " +
	"fifteen sixteen seventeen eighteen nineteen twenty")

// missingNumber is the first number of answer that input gives neither in digits nor as
// a number word up to twenty ("" when it gives every one).
func missingNumber(answer, input string) string {
	given := map[string]bool{}
	for _, n := range integers(input) {
		given[n] = true
	}
	for _, w := range text.Words(strings.ToLower(input)) {
		if i := slices.Index(numberWords, w); i >= 0 {
			given[strconv.Itoa(i)] = true
		}
	}
	for _, n := range integers(answer) {
		if !given[n] {
			return n
		}
	}
	return ""
}

// grounding is the share of an answer's content tokens (numbers, and words of three
// letters or more other than function words) that its input holds. A worked answer
// reuses its question's names, things and numbers, a summary its dialogue's names and
// topics; another input's answer shares almost none. Measured on AdaptFT-Bench seed 1
// (labelled answers: the pool and the parent data): GSM8K answers median 0.56, 1 %
// below 0.25, the lines given another problem's answer 0 (all 32 below 0.25); SAMSum
// summaries median 0.78, 1 % below 0.33, another dialogue's summary 0 (all 21).
func grounding(answer, input string) float64 {
	in := map[string]bool{}
	for _, w := range contentTokens(input) {
		in[w] = true
	}
	seen, held := map[string]bool{}, 0
	for _, w := range contentTokens(answer) {
		if seen[w] {
			continue
		}
		seen[w] = true
		if in[w] {
			held++
		}
	}
	if len(seen) == 0 {
		return 1
	}
	return float64(held) / float64(len(seen))
}

var contentRe = regexp.MustCompile(`[a-z]+|\d+(\.\d+)?`)

// functionWords say nothing of what an answer is about.
var functionWords = set(strings.Fields("the and for that with this was are were from have has had his her hers she him they them their there " +
	"what which who whom when where how why will would can could should into than then also just about each more most other some such " +
	"only over very your you our out not but all any its one two per")...)

func contentTokens(s string) []string {
	var out []string
	for _, w := range contentRe.FindAllString(strings.ToLower(s), -1) {
		if w[0] >= '0' && w[0] <= '9' || len(w) >= 3 && !functionWords[w] {
			out = append(out, w)
		}
	}
	return out
}

var (
	stepRe   = regexp.MustCompile(`<<([^=<>]+)=([^<>]+)>>`)
	finalRe  = regexp.MustCompile(`####\s*(-?[\d,]*\.?\d+)\s*$`)
	numberRe = regexp.MustCompile(`-?\d[\d,]*(\.\d+)?`)
)

func (g generationAnswers) contradicted(f Failure, in string, _ []text.Hit) (Kind, string) {
	if gr := grounding(f.Expected, in); g.minGrounding > 0 && gr < g.minGrounding {
		return PoisonUnrelated, fmt.Sprintf("the input holds %s of the expected answer's words and numbers; the task's own answers hold at least %s (all but 1 %%): an answer to another input",
			ftoa(gr), ftoa(g.minGrounding))
	}
	if g.numbersFromInput {
		if n := missingNumber(f.Expected, in); n != "" {
			return PoisonNumberNotInInput, "the expected answer says " + n + ", which the input does not; the task's answers take their numbers from their inputs"
		}
	}
	steps := stepRe.FindAllStringSubmatch(f.Expected, -1)
	for _, st := range steps {
		want, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(st[2]), ",", ""), 64)
		if err != nil {
			continue
		}
		got, ok := evalArithmetic(st[1])
		if ok && !near(got, want) {
			return PoisonArithmetic, fmt.Sprintf("the worked step %s=%s is wrong (%s is %s)", st[1], st[2], st[1], strconv.FormatFloat(got, 'g', 8, 64))
		}
	}
	m := finalRe.FindStringSubmatch(f.Expected)
	if m == nil || len(steps) == 0 {
		return "", ""
	}
	final, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil {
		return "", ""
	}
	body := f.Expected[:strings.LastIndex(f.Expected, "####")]
	for _, n := range numberRe.FindAllString(body, -1) {
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n, ",", ""), 64); err == nil && near(v, final) {
			return "", ""
		}
	}
	return PoisonUnworked, fmt.Sprintf("the final answer %s is no number the worked steps reach", m[1])
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.01*math.Max(1, math.Abs(b)) }

func (generationAnswers) modelCheck(context.Context, model.CausalLM, model.Tokenizer, []Failure, []Verdict, task.EvalOptions) error {
	return nil
}

// evalArithmetic evaluates + - * / and parentheses over decimal numbers; ok is false for
// anything else (a step that is not plain arithmetic is not judged).
func evalArithmetic(s string) (float64, bool) {
	p := &arith{s: strings.ReplaceAll(strings.ReplaceAll(s, ",", ""), " ", "")}
	v, ok := p.sum()
	return v, ok && p.i == len(p.s)
}

type arith struct {
	s string
	i int
}

func (p *arith) sum() (float64, bool) {
	v, ok := p.product()
	for ok && p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
		op := p.s[p.i]
		p.i++
		var w float64
		if w, ok = p.product(); op == '+' {
			v += w
		} else {
			v -= w
		}
	}
	return v, ok
}

func (p *arith) product() (float64, bool) {
	v, ok := p.factor()
	for ok && p.i < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '/') {
		op := p.s[p.i]
		p.i++
		var w float64
		if w, ok = p.factor(); op == '*' {
			v *= w
		} else if w == 0 {
			return 0, false
		} else {
			v /= w
		}
	}
	return v, ok
}

func (p *arith) factor() (float64, bool) {
	if p.i >= len(p.s) {
		return 0, false
	}
	switch c := p.s[p.i]; {
	case c == '-':
		p.i++
		v, ok := p.factor()
		return -v, ok
	case c == '(':
		p.i++
		v, ok := p.sum()
		if !ok || p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, false
		}
		p.i++
		return v, true
	}
	j := p.i
	for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.') {
		j++
	}
	v, err := strconv.ParseFloat(p.s[p.i:j], 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return v, true
}
