package production

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// TestEntityFlipDetection measures triage on CoNLL-2003: validation sentences logged as
// failures, 15 % with one entity's type changed (as bench/production poisons them),
// against the training split as the labelled reference. Measured: 84 of 162 flips
// caught, 38 of 980 genuine lines flagged. Text alone cannot settle every flip (unknown
// names, types the data itself mixes up); the bounds below keep what it does settle.
func TestEntityFlipDetection(t *testing.T) {
	tk, err := task.Load("conll2003")
	if err != nil {
		t.Fatal(err)
	}
	train, _ := tk.Split("train")
	val, _ := tk.Split("validation")
	tr := newTriager(tk, train[:8000])
	r := rand.New(rand.NewPCG(3, 4))
	var flips, caught, genuine, alarms int
	for i, ex := range val[:1500] {
		if len(ex.Entities) == 0 {
			continue
		}
		f := Failure{ID: ex.ID, Input: ex.Text, Entities: ex.Entities, PredFormatOK: true}
		flipped := r.Float64() < 0.15
		if flipped {
			es := append([]task.Entity(nil), ex.Entities...)
			k := r.IntN(len(es))
			other := tk.EntityTypes[r.IntN(len(tk.EntityTypes))]
			for other == es[k].Type {
				other = tk.EntityTypes[r.IntN(len(tk.EntityTypes))]
			}
			es[k].Type = other
			f.Entities = es
		}
		v := tr.triage(f)
		poison := v.Class == "poison" && v.Kind == PoisonLabelFlip
		if flipped {
			flips++
			if poison {
				caught++
			}
		} else {
			genuine++
			if poison {
				alarms++
				if alarms <= 3 {
					t.Logf("false alarm %d: %s (%s)", i, v.Reason, strings.Join([]string{ex.Text}, ""))
				}
			}
		}
	}
	t.Logf("flips caught %d/%d, genuine lines flagged %d/%d", caught, flips, alarms, genuine)
	if float64(caught) < 0.5*float64(flips) || float64(alarms) > 0.05*float64(genuine) {
		t.Fatalf("flips caught %d/%d, genuine lines flagged %d/%d", caught, flips, alarms, genuine)
	}
}
