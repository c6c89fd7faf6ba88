package triage

import (
	"context"
	"fmt"
	"math"
	"regexp"
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

// generationAnswers checks what a free-form answer can be checked against without the
// truth: a worked answer's own arithmetic. GSM8K's answers annotate each step as
// <<48/2=24>> and end in "#### N"; in its 7,473 training answers every annotated step is
// right and the final number appears in the working in all but 16 (0.2 %).
type generationAnswers struct{ noAnswers }

func newGenerationAnswers(*task.Task, []task.Example) answers { return generationAnswers{} }

var (
	stepRe   = regexp.MustCompile(`<<([^=<>]+)=([^<>]+)>>`)
	finalRe  = regexp.MustCompile(`####\s*(-?[\d,]*\.?\d+)\s*$`)
	numberRe = regexp.MustCompile(`-?\d[\d,]*(\.\d+)?`)
)

func (generationAnswers) contradicted(f Failure, _ string, _ []text.Hit) (Kind, string) {
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
