package task

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/metrics"
)

// extraction: typed spans of the input, written "TYPE: span; TYPE: span" in order of
// appearance, or "none"; generated.
type extraction struct{}

func (extraction) field() string     { return "{entities}" }
func (extraction) metrics() []string { return []string{"entity_f1"} }
func (extraction) constrained() bool { return false }
func (extraction) balanced() bool    { return false }

func (extraction) validate(t *Task) error {
	if len(t.EntityTypes) == 0 {
		return errors.New("an extraction task needs entity_types")
	}
	for _, e := range t.EntityTypes {
		if e == "" || strings.ContainsAny(e, ":;") {
			return fmt.Errorf("entity type %q: must be non-empty without ':' or ';'", e)
		}
	}
	return nil
}

func (extraction) check(t *Task, ex Example) string {
	for _, e := range ex.Entities {
		if !t.HasEntityType(e.Type) {
			return fmt.Sprintf("entity type %q is not one of %s", e.Type, strings.Join(t.EntityTypes, ", "))
		}
		if strings.TrimSpace(e.Text) == "" {
			return "an entity has empty text"
		}
	}
	return ""
}

func (extraction) answer(_ *Task, ex Example) string { return FormatEntities(ex.Entities) }

func (extraction) read(t *Task, s string) (string, []Entity, bool) {
	if s == "none" || s == "" {
		return "", nil, s == "none"
	}
	var entities []Entity
	ok := true
	for _, part := range strings.Split(s, ";") {
		typ, span, found := strings.Cut(part, ":")
		typ, span = strings.TrimSpace(typ), strings.TrimSpace(span)
		if !found || !t.HasEntityType(typ) || span == "" {
			ok = false
			continue
		}
		entities = append(entities, Entity{Type: typ, Text: span})
	}
	return "", entities, ok
}

func (extraction) same(a, b Example) bool {
	fn, fp, _ := EntityDiff(a.Entities, b.Entities)
	return len(fn) == 0 && len(fp) == 0
}

func (extraction) keys(ex Example) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range ex.Entities {
		if !seen[e.Type] {
			out = append(out, e.Type)
			seen[e.Type] = true
		}
	}
	return out
}

// score is entity-level F1 (micro), with per-type figures; an example's own score is its
// entity F1 (1 when neither side has entities).
func (extraction) score(t *Task, outs []string, exs []Example, res *Result) error {
	pred := make([][]Entity, len(exs))
	ref := make([][]Entity, len(exs))
	for i, ex := range exs {
		_, es, ok := t.ParseOutput(outs[i])
		pred[i], ref[i] = es, ex.Entities
		one, _, err := metrics.EntityF1([][]Entity{es}, [][]Entity{ex.Entities})
		if err != nil {
			return err
		}
		score := one.F1
		if len(es) == 0 && len(ex.Entities) == 0 {
			score = 1
		}
		res.Predictions[i] = Prediction{ID: ex.ID, Output: outs[i], Entities: es, FormatOK: ok, Correct: score == 1, Score: score}
	}
	all, perType, err := metrics.EntityF1(pred, ref)
	if err != nil {
		return err
	}
	res.Value, res.PerType, res.Entities = all.F1, perType, &all
	return nil
}

// errors: each entity missed, invented or cut at the wrong place, by type; an output off
// the format as well.
func (extraction) errors(want, got Example, formatOK bool) []Error {
	var out []Error
	if !formatOK {
		out = append(out, Error{ID: "format", Kind: FormatErrors})
	}
	fn, fp, boundary := EntityDiff(want.Entities, got.Entities)
	for _, e := range fn {
		out = append(out, Error{ID: "fn:" + e.Type, Kind: FalseNegatives, Gold: e.Type})
	}
	for _, e := range fp {
		out = append(out, Error{ID: "fp:" + e.Type, Kind: FalsePositives, Gold: e.Type})
	}
	for _, e := range boundary {
		out = append(out, Error{ID: "boundary:" + e.Type, Kind: Boundary, Gold: e.Type})
	}
	return out
}

// exercises: an entity of the type can be missed or cut only where there is one, and
// invented only where there is none.
func (extraction) exercises(e Error, ex Example) bool {
	has := false
	for _, x := range ex.Entities {
		has = has || x.Type == e.Gold
	}
	if e.Kind == FalsePositives {
		return !has
	}
	return has
}

func (extraction) shows(e Error, ex Example, p Prediction) bool {
	fn, fp, boundary := EntityDiff(ex.Entities, p.Entities)
	list := map[ErrorKind][]Entity{FalseNegatives: fn, FalsePositives: fp, Boundary: boundary}[e.Kind]
	for _, x := range list {
		if x.Type == e.Gold {
			return true
		}
	}
	return false
}
