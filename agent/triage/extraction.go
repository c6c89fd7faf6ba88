package triage

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/model"
)

// extractionAnswers: a logged entity type is contradicted when the entity's text, or its
// words, are of another type throughout the labelled data, or when the type model
// (entitytype.go) gives it little probability; a logged entity that does not occur in
// the input is poison of its own kind. The second look asks the deployed model about the
// types the type model doubts.
type extractionAnswers struct {
	t      *task.Task
	types  *typeModel                // entity type from span and context
	entity map[string]map[string]int // lower-cased entity text -> type -> count in the pool
	word   map[string]map[string]int // lower-cased word of an entity -> type -> count
}

// typeFlip: a logged entity type the type model gives less probability than this is a
// flip (see modelFlip for how it was chosen).
const typeFlip = 0.3

func newExtractionAnswers(t *task.Task, pool []task.Example) answers {
	x := &extractionAnswers{t: t, types: newTypeModel(t.EntityTypes, pool), entity: map[string]map[string]int{}, word: map[string]map[string]int{}}
	count := func(m map[string]map[string]int, k, typ string) {
		if m[k] == nil {
			m[k] = map[string]int{}
		}
		m[k][typ]++
	}
	for _, ex := range pool {
		for _, e := range ex.Entities {
			count(x.entity, strings.ToLower(e.Text), e.Type)
			for _, w := range text.Words(e.Text) {
				count(x.word, w, e.Type)
			}
		}
	}
	return x
}

// style: sentences full of names, each novel (only near-zero similarity to the data is
// off-domain, and a sentence is foreign only when almost none of it is known).
func (*extractionAnswers) style() inputStyle {
	return inputStyle{minSimilarity: 0.03, foreignKnown: 0.1, names: true}
}

func (x *extractionAnswers) contradicted(f Failure, _ string, _ []text.Hit) (Kind, string) {
	// Evidence for each type of a logged entity: the labelled data's entities with
	// the same text (weight 3 each), and with its words (each word's type counts,
	// at most 5 in all per word, shared in proportion).
	posts := x.types.posteriors(f.Input, f.Entities)
	for k, e := range f.Entities {
		ev := map[string]float64{}
		for typ, c := range x.entity[strings.ToLower(e.Text)] {
			ev[typ] += 3 * float64(c)
		}
		for _, w := range text.Words(e.Text) {
			dist := x.word[w]
			tot := 0
			for _, c := range dist {
				tot += c
			}
			for typ, c := range dist {
				ev[typ] += float64(c) / float64(tot) * min(float64(tot), 5)
			}
		}
		var total float64
		top, topW := "", 0.0
		for _, typ := range slices.Sorted(maps.Keys(ev)) {
			total += ev[typ]
			if ev[typ] > topW {
				top, topW = typ, ev[typ]
			}
		}
		if total >= 2 && ev[e.Type]/total < 0.1 && top != e.Type {
			return PoisonLabelFlip, quote(e.Text) + " is " + top + " by the task's data (" + ftoa(topW/total) + " of the evidence) and hardly ever " + e.Type
		}
		if post := posts[k]; post != nil && post[e.Type] < typeFlip {
			best, bestP := "", 0.0
			for _, typ := range slices.Sorted(maps.Keys(post)) {
				if post[typ] > bestP {
					best, bestP = typ, post[typ]
				}
			}
			return PoisonLabelFlip, "from its words and context, " + quote(e.Text) + " is " + best + " (probability " + ftoa(bestP) + "), " + e.Type + " " + ftoa(post[e.Type])
		}
	}
	for _, e := range f.Entities {
		if !strings.Contains(strings.ToLower(f.Input), strings.ToLower(e.Text)) {
			return PoisonNotInText, "expected entity " + quote(e.Text) + " does not occur in the input"
		}
	}
	return "", ""
}

// Thresholds of the entity type check with the deployed model: a logged type is a flip
// when the deployed model gives it less than modelFlip of its probability over the types
// and the type model less than typeDoubt. Either alone is common for genuine failures —
// the deployed model mistypes (that is why the line was logged), and the type model
// knows little of rare names — both together rarely.
//
// typeFlip, typeDoubt and modelFlip were chosen on the failure log of a CPU run of
// bench/production -task conll2003 (deployed pioneer-nano, 469 lines, with their true
// labels), against every single-entity type flip of it (3561). With the naive Bayes
// type model this replaced (flip below 0.02, or below 0.3 when the deployed model's
// output typed the span otherwise; model check below 0.3 and 0.05), triage turned away
// 48 true lines and missed 4.4 % of the flips. Now it turns away 58 and misses 1.4 %
// (53 and 1.38 % since the type model reads coordination). Looser settings catch more
// at a higher cost: typeFlip 0.4 and typeDoubt 0.7 turn away 76 true lines and miss
// 1.0 %. On an unseen deployment's log (seed 2: 451 lines, 3618 flips) the settings
// turn away 41 true lines and miss 0.88 % of the flips.
const (
	modelFlip = 0.05
	typeDoubt = 0.5
)

// modelCheck asks the deployed model for the type of each entity of the failures let
// through whose logged types the type model doubts.
func (x *extractionAnswers) modelCheck(ctx context.Context, m model.CausalLM, tok model.Tokenizer, failures []Failure, verdicts []Verdict, o task.EvalOptions) error {
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
		d := x.typeDoubts(ex)
		if d == nil {
			continue
		}
		idx, exs, doubts = append(idx, i), append(exs, ex), append(doubts, d)
	}
	if len(exs) == 0 {
		return nil
	}
	scores, err := x.t.EntityTypeScores(ctx, m, tok, exs, o)
	if err != nil {
		return err
	}
	for k, i := range idx {
		if reason := x.entityModelCheck(exs[k], doubts[k], scores[k]); reason != "" {
			verdicts[i] = Verdict{ID: failures[i].ID, Line: failures[i].Line, Class: Poison, Kind: PoisonLabelFlip, Reason: reason}
		}
	}
	return nil
}

// typeDoubts gives, for each entity of ex, the type model's probability of its logged
// type where that is below typeDoubt, and -1 where it is not (or the model abstains);
// nil when no entity is doubted.
func (x *extractionAnswers) typeDoubts(ex task.Example) []float64 {
	var doubts []float64
	posts := x.types.posteriors(ex.Text, ex.Entities)
	for k, e := range ex.Entities {
		if post := posts[k]; post != nil && post[e.Type] < typeDoubt {
			if doubts == nil {
				doubts = slices.Repeat([]float64{-1}, len(ex.Entities))
			}
			doubts[k] = post[e.Type]
		}
	}
	return doubts
}

// entityModelCheck is triage's second look at an extraction failure: doubts are
// typeDoubts(ex), scores the deployed model's log-probabilities of each logged entity
// with each type (as task.EntityTypeScores returns them).
func (x *extractionAnswers) entityModelCheck(ex task.Example, doubts []float64, scores [][]float64) string {
	for k, e := range ex.Entities {
		j := slices.Index(x.t.EntityTypes, e.Type)
		if k >= len(doubts) || doubts[k] < 0 || j < 0 || k >= len(scores) {
			continue
		}
		p := softmax(scores[k])
		if p[j] >= modelFlip {
			continue
		}
		best := 0
		for i := range p {
			if p[i] > p[best] {
				best = i
			}
		}
		return fmt.Sprintf("the deployed model gives %s the type %s with probability %s (%s %s), and its words and context %s",
			quote(e.Text), e.Type, ftoa(p[j]), x.t.EntityTypes[best], ftoa(p[best]), ftoa(doubts[k]))
	}
	return ""
}

func softmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	out := make([]float64, len(x))
	var z float64
	for i, v := range x {
		out[i] = math.Exp(v - m)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// respell repairs the input where an expected entity occurs in it only misspelt: the
// words of the input as many as the entity's that are one edit from it (entities of at
// least minRespell letters) are replaced by the entity's spelling. A typing slip in a
// name leaves the line's labels right; the label says how the name is spelt.
func (*extractionAnswers) respell(f Failure, in string) (string, bool) {
	changed := false
	for _, e := range f.Entities {
		want := strings.ToLower(e.Text)
		if utf8.RuneCountInString(want) < minRespell || strings.Contains(strings.ToLower(in), want) {
			continue
		}
		fields, n := strings.Fields(in), len(strings.Fields(e.Text))
		for i := 0; i+n <= len(fields); i++ {
			if got := strings.ToLower(strings.Join(fields[i:i+n], " ")); text.OneEdit(got, want) {
				in = strings.Join(slices.Concat(fields[:i], strings.Fields(e.Text), fields[i+n:]), " ")
				changed = true
				break
			}
		}
	}
	return in, changed
}

// minRespell: an entity shorter than this is not looked for misspelt (one edit from a
// short name is too many other words).
const minRespell = 4
