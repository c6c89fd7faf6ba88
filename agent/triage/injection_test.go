package triage

import (
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// TestInjectionSparesTaskData: the injection checks flag next to none of the bundled
// tasks' own examples (every split of CLINC150, Banking77 and CoNLL-2003: ordinary
// requests and news sentences), with the training split as the labelled data, as in a
// production run, and without any (the ordinary phrases of a task are then unknown).
func TestInjectionSparesTaskData(t *testing.T) {
	for _, name := range task.Bundled() {
		tk, err := task.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		train, err := tk.Split("train")
		if err != nil {
			t.Fatal(err)
		}
		for _, pool := range [][]task.Example{train, nil} {
			scan(t, tk, &Triager{t: tk, pool: pool}, len(pool)) // what injected reads of a triager
		}
	}
}

// scan runs the injection checks over every split of a task.
func scan(t *testing.T, tk *task.Task, tr *Triager, pool int) {
	t.Helper()
	name := tk.Name
	n, flagged := 0, 0
	for _, split := range []string{"train", "validation", "test"} {
		exs, err := tk.Split(split)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			in, _ := text.Normalize(ex.Text)
			n++
			if why := tr.injected(in, ex.Label); why != "" {
				flagged++
				if flagged <= 10 {
					t.Logf("%s %s: %q: %s", name, ex.ID, ex.Text, why)
				}
			}
		}
	}
	t.Logf("%s (%d labelled examples): %d of %d examples flagged", name, pool, flagged, n)
	limit := n / 2000 // at most 0.05 %
	if pool == 0 {
		limit = n / 1000
	}
	if flagged > limit {
		t.Errorf("%s: %d of %d examples flagged as injection", name, flagged, n)
	}
}
