package task_test

import (
	"slices"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// TestErrorsAreShownByTheirPrediction: for every task type, the ways a wrong answer
// goes wrong are named, and each is exercised by the example (but invented entities)
// and shown by the model's
// prediction (what diagnosis's probes count); the right answer shows none of them.
func TestErrorsAreShownByTheirPrediction(t *testing.T) {
	ent := func(pairs ...string) []task.Entity {
		var out []task.Entity
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, task.Entity{Type: pairs[i], Text: pairs[i+1]})
		}
		return out
	}
	cases := []struct {
		typ         task.Type
		labels      []string
		types       []string
		want, got   task.Example
		formatOK    bool
		ids         []string
		wantSummary string
	}{
		{typ: task.Classification, labels: []string{"weather", "timer", "alarm"},
			want: task.Example{Text: "will it rain", Label: "weather"}, got: task.Example{Label: "timer"}, formatOK: true,
			ids: []string{"confusion:weather->timer", "errors:weather"}, wantSummary: "errors:weather"},
		{typ: task.Classification, labels: []string{"weather", "timer"},
			want: task.Example{Text: "will it rain", Label: "weather"}, got: task.Example{Label: "sunny"}, formatOK: false,
			ids: []string{"format"}},
		{typ: task.Extraction, types: []string{"PER", "LOC"},
			want: task.Example{Text: "Ann Lee flew to Rome", Entities: ent("PER", "Ann Lee", "LOC", "Rome")},
			got:  task.Example{Entities: ent("PER", "Ann", "PER", "Rome")}, formatOK: true,
			ids: []string{"fn:PER", "fn:LOC", "fp:PER", "fp:PER", "boundary:PER"}},
		{typ: task.Generation,
			want: task.Example{Text: "say hi", Output: "hello"}, got: task.Example{Output: "bye"}, formatOK: true,
			ids: []string{"generation"}},
		{typ: task.Generation,
			want: task.Example{Text: "sum", Output: "2 and 3 make <<2+3=5>>5\n#### 5"}, got: task.Example{Output: "2 and 3 make 6\n#### 6"}, formatOK: true,
			ids: []string{"wrong_answer"}},
		{typ: task.Generation,
			want: task.Example{Text: "sum", Output: "2 and 3 make <<2+3=5>>5\n#### 5"}, got: task.Example{Output: "two and three"}, formatOK: true,
			ids: []string{"missing_answer", "too_short"}},
		{typ: task.Generation,
			want: task.Example{Text: "chat", Output: "Ann will bring the cake."}, got: task.Example{Output: "Ann and Bob talk about the party on Sunday, the cake, the guests and the music they will play."}, formatOK: true,
			ids: []string{"too_long"}},
	}
	for _, c := range cases {
		tk, err := task.New("t", c.typ, c.labels, c.types, "")
		if err != nil {
			t.Fatal(err)
		}
		errs := tk.Errors(c.want, c.got, c.formatOK)
		var ids []string
		for _, e := range errs {
			ids = append(ids, e.ID)
			if e.Summary != (e.ID == c.wantSummary) {
				t.Errorf("%s %s: summary %v", c.typ, e.ID, e.Summary)
			}
		}
		if !slices.Equal(ids, c.ids) {
			t.Fatalf("%s: errors %v, want %v", c.typ, ids, c.ids)
		}
		wrong := task.Prediction{Label: c.got.Label, Entities: c.got.Entities, Output: c.got.Output, FormatOK: c.formatOK}
		right := task.Prediction{Label: c.want.Label, Entities: c.want.Entities, Output: c.want.Output, FormatOK: true, Correct: true}
		for _, e := range errs {
			// (Invented entities are probed on examples without the type:
			// TestEntityErrorsExercisedWhereTheyCanHappen.)
			if e.Kind != task.FalsePositives && !tk.Exercises(e, c.want) {
				t.Errorf("%s %s: not exercised by its own example", c.typ, e.ID)
			}
			if !tk.Shows(e, c.want, wrong) {
				t.Errorf("%s %s: not shown by the wrong prediction", c.typ, e.ID)
			}
			if tk.Shows(e, c.want, right) {
				t.Errorf("%s %s: shown by the right prediction", c.typ, e.ID)
			}
		}
	}
}

// TestEntityErrorsExercisedWhereTheyCanHappen: an entity type can be missed only where
// the example has one, and invented only where it has none.
func TestEntityErrorsExercisedWhereTheyCanHappen(t *testing.T) {
	tk, err := task.New("t", task.Extraction, nil, []string{"PER", "LOC"}, "")
	if err != nil {
		t.Fatal(err)
	}
	with := task.Example{Entities: []task.Entity{{Type: "PER", Text: "Ann"}}}
	without := task.Example{Entities: []task.Entity{{Type: "LOC", Text: "Rome"}}}
	fn := task.Error{ID: "fn:PER", Kind: task.FalseNegatives, Gold: "PER"}
	fp := task.Error{ID: "fp:PER", Kind: task.FalsePositives, Gold: "PER"}
	if !tk.Exercises(fn, with) || tk.Exercises(fn, without) || tk.Exercises(fp, with) || !tk.Exercises(fp, without) {
		t.Error("false negatives need an entity of the type, false positives its absence")
	}
}
