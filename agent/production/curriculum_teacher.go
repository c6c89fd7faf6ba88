package production

import (
	"context"
	"fmt"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/agent/triage"
)

// extendByTeacher asks the teacher for n paraphrases of every gold failure
// (tasks whose answers are labels only: a paraphrase keeps the label) and adds those that pass triage.
func extendByTeacher(ctx context.Context, tc *teacher.Client, t *task.Task, tr *triage.Triager, c *Curriculum, n int) error {
	if n <= 0 || !t.Constrained() {
		return nil
	}
	var gold []Item
	for _, it := range c.Items {
		if it.Source == SrcGold {
			gold = append(gold, it)
		}
	}
	for _, g := range gold {
		lines, err := tc.Paraphrases(ctx, g.Example.Text, g.Example.Label, n)
		if err != nil {
			return err
		}
		added := 0
		for _, line := range lines {
			f := triage.Failure{ID: g.Example.ID + "/teacher", Input: line, Label: g.Example.Label, Predicted: g.Example.Label, PredFormatOK: true}
			if v := tr.Triage(f); v.Class == triage.Poison {
				continue
			}
			ex := g.Example
			ex.ID, ex.Text = fmt.Sprintf("%s/teacher-%d", g.Example.ID, added), line
			c.Items = append(c.Items, Item{Example: ex, Source: SrcTeacher, Pattern: g.Pattern})
			c.Mix[SrcTeacher]++
			added++
		}
	}
	return nil
}
