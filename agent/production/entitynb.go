package production

import (
	"math"
	"strings"
	"unicode"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// typeModel is a naive Bayes model of an entity's type from the span and its context
// (its words, word shapes, suffix, length, the words before and after), fitted on the
// task's labelled sentences. Triage uses it to tell a flipped type from a genuine one.
type typeModel struct {
	types  []string
	prior  map[string]float64
	count  map[string]map[string]float64 // type -> feature -> count
	total  map[string]float64            // type -> feature occurrences
	vocab  map[string]bool
	fitted int
}

func newTypeModel(types []string, exs []task.Example) *typeModel {
	m := &typeModel{types: types, prior: map[string]float64{}, count: map[string]map[string]float64{}, total: map[string]float64{}, vocab: map[string]bool{}}
	for _, typ := range types {
		m.count[typ] = map[string]float64{}
	}
	for _, ex := range exs {
		toks := strings.Split(ex.Text, " ")
		for _, e := range ex.Entities {
			if m.count[e.Type] == nil {
				continue
			}
			at := findSpan(toks, strings.Split(e.Text, " "))
			if at < 0 {
				continue
			}
			m.prior[e.Type]++
			m.fitted++
			for _, f := range spanFeatures(toks, at, len(strings.Split(e.Text, " "))) {
				m.count[e.Type][f]++
				m.total[e.Type]++
				m.vocab[f] = true
			}
		}
	}
	return m
}

// posterior is P(type | span in context) for each type; nil when the span is not in the
// sentence or the model has seen too little.
func (m *typeModel) posterior(text string, e task.Entity) map[string]float64 {
	if m.fitted < 50 {
		return nil
	}
	toks := strings.Split(text, " ")
	span := strings.Fields(e.Text)
	at := findSpan(toks, span)
	if at < 0 {
		return nil
	}
	feats := spanFeatures(toks, at, len(span))
	logp := map[string]float64{}
	best := math.Inf(-1)
	V := float64(len(m.vocab) + 1)
	for _, typ := range m.types {
		lp := math.Log((m.prior[typ] + 1) / (float64(m.fitted) + float64(len(m.types))))
		for _, f := range feats {
			if !m.vocab[f] {
				continue // unseen everywhere: no evidence either way
			}
			lp += math.Log((m.count[typ][f] + 0.5) / (m.total[typ] + 0.5*V))
		}
		logp[typ] = lp
		best = max(best, lp)
	}
	var z float64
	for _, lp := range logp {
		z += math.Exp(lp - best)
	}
	out := map[string]float64{}
	for typ, lp := range logp {
		out[typ] = math.Exp(lp-best) / z
	}
	return out
}

func findSpan(toks, span []string) int {
	for i := 0; i+len(span) <= len(toks); i++ {
		ok := true
		for j := range span {
			if toks[i+j] != span[j] {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

func spanFeatures(toks []string, at, n int) []string {
	var f []string
	shape := make([]string, 0, n)
	for _, w := range toks[at : at+n] {
		lw := strings.ToLower(w)
		f = append(f, "w:"+lw)
		if r := []rune(lw); len(r) > 3 {
			f = append(f, "suf:"+string(r[len(r)-3:]))
		}
		shape = append(shape, wordShape(w))
	}
	f = append(f, "shape:"+strings.Join(shape, " "), "len:"+itoa(min(n, 4)))
	if at > 0 {
		f = append(f, "prev:"+strings.ToLower(toks[at-1]))
	} else {
		f = append(f, "prev:<s>")
	}
	if at+n < len(toks) {
		f = append(f, "next:"+strings.ToLower(toks[at+n]))
	} else {
		f = append(f, "next:</s>")
	}
	return f
}

func wordShape(w string) string {
	var b strings.Builder
	last := rune(0)
	for _, r := range w {
		c := 'x'
		switch {
		case unicode.IsUpper(r):
			c = 'X'
		case unicode.IsDigit(r):
			c = 'd'
		case !unicode.IsLetter(r):
			c = r
		}
		if c != last {
			b.WriteRune(c)
			last = c
		}
	}
	return b.String()
}
