// Package metrics scores model outputs against references: exact match, accuracy over a
// label set, entity-level precision/recall/F1, ROUGE-L and the final answer of a worked
// solution. Pure Go, no model needed.
package metrics

import (
	"fmt"
	"strings"
	"unicode"
)

// Normalize lowercases, trims and collapses whitespace: the comparison exact match uses.
func Normalize(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// ExactMatch is the fraction of predictions equal to their reference after Normalize.
func ExactMatch(pred, ref []string) (float64, error) {
	if err := sameLen(pred, ref); err != nil {
		return 0, err
	}
	hits := 0
	for i := range pred {
		if Normalize(pred[i]) == Normalize(ref[i]) {
			hits++
		}
	}
	return float64(hits) / float64(len(pred)), nil
}

func sameLen(pred, ref []string) error {
	if len(pred) != len(ref) {
		return fmt.Errorf("metrics: %d predictions for %d references", len(pred), len(ref))
	}
	if len(pred) == 0 {
		return fmt.Errorf("metrics: nothing to score")
	}
	return nil
}

// Accuracy is the fraction of predicted labels equal to the reference labels.
func Accuracy(pred, ref []string) (float64, error) {
	if err := sameLen(pred, ref); err != nil {
		return 0, err
	}
	hits := 0
	for i := range pred {
		if pred[i] == ref[i] {
			hits++
		}
	}
	return float64(hits) / float64(len(pred)), nil
}

// Entity is a typed span, e.g. {Type: "PER", Text: "Angela Merkel"}.
type Entity struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// PRF is precision, recall and F1 with the counts behind them.
type PRF struct {
	Precision, Recall, F1 float64
	TP, FP, FN            int
}

func prf(tp, fp, fn int) PRF {
	r := PRF{TP: tp, FP: fp, FN: fn}
	if tp+fp > 0 {
		r.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		r.Recall = float64(tp) / float64(tp+fn)
	}
	if r.Precision+r.Recall > 0 {
		r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
	}
	return r
}

// EntityF1 is micro-averaged entity-level scoring: a predicted entity counts as correct
// when an unmatched reference entity of the same type has the same normalized text
// (each reference matches at most once). It also returns the scores per type.
func EntityF1(pred, ref [][]Entity) (PRF, map[string]PRF, error) {
	if len(pred) != len(ref) {
		return PRF{}, nil, fmt.Errorf("metrics: %d predictions for %d references", len(pred), len(ref))
	}
	type counts struct{ tp, fp, fn int }
	per := map[string]*counts{}
	get := func(t string) *counts {
		if per[t] == nil {
			per[t] = &counts{}
		}
		return per[t]
	}
	var tp, fp, fn int
	for i := range pred {
		left := map[Entity]int{}
		for _, e := range ref[i] {
			left[Entity{e.Type, Normalize(e.Text)}]++
		}
		for _, e := range pred[i] {
			k := Entity{e.Type, Normalize(e.Text)}
			if left[k] > 0 {
				left[k]--
				tp++
				get(e.Type).tp++
			} else {
				fp++
				get(e.Type).fp++
			}
		}
		for k, n := range left {
			fn += n
			get(k.Type).fn += n
		}
	}
	out := map[string]PRF{}
	for t, c := range per {
		out[t] = prf(c.tp, c.fp, c.fn)
	}
	return prf(tp, fp, fn), out, nil
}

// tokens splits text into lowercase words and single punctuation marks.
func tokens(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur.WriteRune(r)
		case unicode.IsSpace(r):
			flush()
		default:
			flush()
			out = append(out, string(r))
		}
	}
	flush()
	return out
}

// RougeL is the ROUGE-L F-measure (β = 1) of a candidate against a reference: from the
// longest common subsequence of their word tokens, LCS/len(candidate) is precision and
// LCS/len(reference) recall.
func RougeL(candidate, reference string) float64 {
	c, r := tokens(candidate), tokens(reference)
	if len(c) == 0 || len(r) == 0 {
		return 0
	}
	prev := make([]int, len(r)+1)
	cur := make([]int, len(r)+1)
	for i := 1; i <= len(c); i++ {
		for j := 1; j <= len(r); j++ {
			switch {
			case c[i-1] == r[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	lcs := float64(prev[len(r)])
	if lcs == 0 {
		return 0
	}
	p, rec := lcs/float64(len(c)), lcs/float64(len(r))
	return 2 * p * rec / (p + rec)
}

// MeanRougeL averages RougeL over pairs.
func MeanRougeL(pred, ref []string) (float64, error) {
	if err := sameLen(pred, ref); err != nil {
		return 0, err
	}
	var s float64
	for i := range pred {
		s += RougeL(pred[i], ref[i])
	}
	return s / float64(len(pred)), nil
}

// FinalAnswer is a worked solution's answer: what follows its last "####" (GSM8K's
// convention), else its last number; a number is read without thousands separators, a
// currency sign or a trailing ".0" ("$1,200.00" is "1200"). "" when it has neither.
func FinalAnswer(s string) string {
	if i := strings.LastIndex(s, "####"); i >= 0 {
		a := strings.TrimSpace(s[i+4:])
		if n := lastNumber(a); n != "" {
			return n
		}
		return Normalize(a)
	}
	return lastNumber(s)
}

// lastNumber is the last number in s, normalised; "" when there is none.
func lastNumber(s string) string {
	end := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return ""
	}
	start := end
	for start > 0 {
		c := s[start-1]
		if c >= '0' && c <= '9' || c == ',' || c == '.' {
			start--
			continue
		}
		break
	}
	n := strings.Trim(strings.ReplaceAll(s[start:end], ",", ""), ".")
	if start > 0 && s[start-1] == '-' {
		n = "-" + n
	}
	if strings.Contains(n, ".") {
		n = strings.TrimRight(strings.TrimRight(n, "0"), ".")
	}
	if n == "" || n == "-" {
		return ""
	}
	return n
}
