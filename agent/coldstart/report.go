package coldstart

import (
	"fmt"
	"sort"
	"strings"
)

// Report is the run's account in Markdown: the task and how it was read, the data and
// their licences, the frozen evaluation set, the base model, every candidate, the choice.
func (o *Outcome) Report(p *Plan, rec dataRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Cold-start: %s\n\n> %s\n\n", o.Task, p.Task.Description)
	fmt.Fprintf(&b, "| | %s on the frozen evaluation set |\n|---|---|\n| base model | %.4f |\n", o.Metric, o.Baseline)
	if o.Best != nil {
		fmt.Fprintf(&b, "| best candidate (%s) | **%.4f** |\n", o.Best.Name, o.Best.Metric)
	}
	fmt.Fprintf(&b, "| target | %.2f (%s) |\n\n", o.Target, map[bool]string{true: "reached", false: "not reached"}[o.Reached])
	b.WriteString("## The task\n\n")
	fmt.Fprintf(&b, "Type %s, metric %s, prompt `%q`, output `%q`.", p.Task.Type, p.Task.Metric, p.Task.Prompt, p.Task.Output)
	if len(p.Task.Labels) > 0 {
		fmt.Fprintf(&b, " Labels: %s.", strings.Join(p.Task.Labels, ", "))
	}
	if len(p.Task.EntityTypes) > 0 {
		fmt.Fprintf(&b, " Entity types: %s.", strings.Join(p.Task.EntityTypes, ", "))
	}
	if p.Task.MaxNewTokens > 0 {
		per := "twice"
		if p.Task.MultiLine {
			per = "four times" // programs
		}
		fmt.Fprintf(&b, " Answers generated up to %d tokens (%s the 95th percentile of the training answers' words, %d at least).", p.Task.MaxNewTokens, per, minAnswerTokens)
	}
	b.WriteString("\n\nHow it was decided:\n\n")
	for _, r := range p.Reasons {
		fmt.Fprintf(&b, "- %s\n", r)
	}
	b.WriteString("\n## The data\n\n| dataset | examples kept | licence | label map |\n|---|---|---|---|\n")
	for _, s := range p.Sources {
		var m []string
		for _, k := range sortedKeys(s.Map) {
			m = append(m, k+" → "+s.Map[k])
		}
		fmt.Fprintf(&b, "| %s (`%s`) | %d | %s | %s |\n", s.Dataset, s.Dir, rec.Pool.From[s.Dataset], orNone(s.License), strings.Join(m, ", "))
	}
	if rec.Seeds != nil {
		fmt.Fprintf(&b, "| the teacher's seed examples | %d | the teacher's terms | – |\n\nTeacher: %s.\n", rec.Pool.From["teacher"], rec.Seeds)
	}
	if len(rec.Pool.Dropped) > 0 {
		b.WriteString("\nLeft out:")
		for _, k := range sortedKeys(rec.Pool.Dropped) {
			fmt.Fprintf(&b, " %s %d;", k, rec.Pool.Dropped[k])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nFrozen evaluation set: %d examples, drawn before any training and never trained on (", rec.Eval.N)
	parts := sortedKeys(rec.Eval.Make)
	for i, k := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, rec.Eval.Make[k])
	}
	fmt.Fprintf(&b, "); %d near-duplicates of its inputs taken out of training. Training %d, dev %d.\n\n", rec.Eval.NearDuplicates, rec.Train, rec.Dev)
	b.WriteString("## Candidates\n\nEach trained from the base model and scored on the frozen set.\n\n| candidate | examples | hard (+negatives) | epochs | lr | trains | " + o.Metric + " |\n|---|---|---|---|---|---|---|\n")
	cs := append([]Candidate(nil), o.Candidates...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Metric > cs[j].Metric })
	for _, c := range cs {
		fmt.Fprintf(&b, "| %s | %d | %d (+%d) | %d | %g | %s | %.4f |\n", c.Name, c.Curation.Out, c.Curation.Hard, c.Curation.Negatives, c.Recipe.Epochs, c.Recipe.LR, strategyOf(c.Recipe), c.Metric)
	}
	for _, c := range cs {
		if c.Sized != "" {
			fmt.Fprintf(&b, "\n%s's data were cut to the wall time left: %s.\n", c.Name, c.Sized)
		}
	}
	fmt.Fprintf(&b, "\nThe search ended: %s.\n\n", o.Stopped)
	if o.Version != "" {
		what := "the adapter"
		if o.Best.Recipe.Full {
			what = "the model"
		}
		fmt.Fprintf(&b, "Deployed: %s (`versions/%s`), %s of %s.\n", o.Version, o.Version, what, o.Best.Name)
	} else {
		b.WriteString("Nothing deployed: no candidate beat the base model.\n")
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "not stated"
	}
	return s
}
