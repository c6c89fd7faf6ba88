package coldstart

// This file is the planner behind an endpoint: a model served with the OpenAI chat API
// proposes the task (its type, labels or entity types and metric) as JSON; the proposal
// is checked against the schema and the task rules, and the data are then found in the
// catalog as the built-in planner finds them. A planner that is down, answers garbage or
// proposes an invalid task is recorded and the built-in planner plans instead.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// Proposal is what a planner endpoint answers: one JSON object.
type Proposal struct {
	Type        string   `json:"type"` // classification, extraction, generation or multiple_choice
	Labels      []string `json:"labels,omitempty"`
	EntityTypes []string `json:"entity_types,omitempty"`
	Metric      string   `json:"metric,omitempty"` // empty: the type's default
	Reason      string   `json:"reason,omitempty"`
}

// Bounds on a proposal.
const (
	maxProposedLabels = 1000
	maxLabelLen       = 64
	plannerExamples   = 5 // user examples shown to the planner
	plannerDatasets   = 8 // catalog datasets shown to the planner
)

// PlanWith plans the task with a planner endpoint, falling back to PlanTask: the plan's
// reasons say which planned it and, after a fallback, why the endpoint's plan was not
// used.
func PlanWith(ctx context.Context, planner *teacher.Client, desc string, examples []task.Example, cat *catalog.Catalog) (*Plan, error) {
	if planner == nil {
		return PlanTask(desc, examples, cat)
	}
	p, err := ProposeTask(ctx, planner, desc, examples, cat)
	if err == nil {
		return p, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	p, berr := PlanTask(desc, examples, cat)
	if berr != nil {
		return nil, fmt.Errorf("%w (the planner at %s failed too: %v)", berr, planner.URL, err)
	}
	p.PlannerFallback = fmt.Sprintf("planner at %s not used: %v; the built-in planner planned the task", planner.URL, err)
	p.Reasons = append([]string{p.PlannerFallback}, p.Reasons...)
	return p, nil
}

// ProposeTask asks the planner for the task and builds the plan on its proposal.
func ProposeTask(ctx context.Context, planner *teacher.Client, desc string, examples []task.Example, cat *catalog.Catalog) (*Plan, error) {
	desc = strings.TrimSpace(desc)
	if desc == "" {
		return nil, fmt.Errorf("coldstart: the task description is empty")
	}
	reply, err := planner.Complete(ctx, plannerPrompt(desc, examples, cat), 0)
	if err != nil {
		return nil, err
	}
	prop, err := ParseProposal(reply)
	if err != nil {
		return nil, err
	}
	return prop.plan(desc, cat)
}

// plannerPrompt asks for the task as JSON, showing the description, a few of the user's
// examples and the catalog's most relevant datasets.
func plannerPrompt(desc string, examples []task.Example, cat *catalog.Catalog) string {
	var b strings.Builder
	b.WriteString("You plan a machine-learning task for a small language model. Answer with one JSON object and nothing else:\n" +
		`{"type": "classification" | "extraction" | "generation" | "multiple_choice", "labels": [...], "entity_types": [...], "metric": "...", "reason": "..."}` + "\n" +
		"labels: the classes of a classification (at least two); entity_types: the kinds of spans an extraction pulls out (e.g. PER, ORG, LOC); " +
		"metric: accuracy (classification, multiple choice), entity_f1 (extraction), exact_match, rouge_l, final_answer or pass_at_1 (generation: " +
		"final_answer judges a worked answer by its final number, pass_at_1 a program by its tests).\n\nTask description: ")
	b.WriteString(desc)
	b.WriteString("\n")
	for i, ex := range examples {
		if i == plannerExamples {
			break
		}
		ans := ex.Label
		if ex.Output != "" {
			ans = ex.Output
		} else if len(ex.Entities) > 0 {
			var es []string
			for _, e := range ex.Entities {
				es = append(es, e.Type+": "+e.Text)
			}
			ans = strings.Join(es, "; ")
		}
		fmt.Fprintf(&b, "Example: %q -> %q\n", ex.Text, ans)
	}
	if cat != nil {
		n := 0
		for _, m := range cat.Rank(desc, nil) {
			if n == plannerDatasets {
				break
			}
			n++
			d := m.Dataset
			fmt.Fprintf(&b, "Dataset %s (%s)", d.Name, d.Kind)
			if len(d.Labels) > 0 {
				fmt.Fprintf(&b, ", labels: %s", preview(d.Labels))
			}
			if len(d.Types) > 0 {
				fmt.Fprintf(&b, ", entity types: %s", preview(d.Types))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// ParseProposal reads the planner's reply: the JSON object in it (a code fence or words
// around it are allowed), checked against the schema.
func ParseProposal(reply string) (*Proposal, error) {
	i, j := strings.Index(reply, "{"), strings.LastIndex(reply, "}")
	if i < 0 || j < i {
		return nil, fmt.Errorf("planner: no JSON object in the reply %.120q", reply)
	}
	var p Proposal
	dec := json.NewDecoder(strings.NewReader(reply[i : j+1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("planner: the reply is not the task's JSON: %v", err)
	}
	p.Type = strings.ToLower(strings.TrimSpace(p.Type))
	p.Metric = strings.ToLower(strings.TrimSpace(p.Metric))
	var err error
	if p.Labels, err = cleanNames("label", p.Labels); err != nil {
		return nil, err
	}
	if p.EntityTypes, err = cleanNames("entity type", p.EntityTypes); err != nil {
		return nil, err
	}
	switch p.Type {
	case "classification":
		if len(p.Labels) < 2 {
			return nil, fmt.Errorf("planner: a classification with %d labels (at least two)", len(p.Labels))
		}
	case "extraction":
		if len(p.EntityTypes) == 0 {
			return nil, fmt.Errorf("planner: an extraction with no entity types")
		}
	case "generation", "multiple_choice":
	default:
		return nil, fmt.Errorf("planner: type %q is not classification, extraction, generation or multiple_choice", p.Type)
	}
	return &p, nil
}

// cleanNames trims names and checks them: none empty, too long or repeated, not too
// many.
func cleanNames(what string, names []string) ([]string, error) {
	if len(names) > maxProposedLabels {
		return nil, fmt.Errorf("planner: %d %ss (at most %d)", len(names), what, maxProposedLabels)
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		k := strings.ToLower(n)
		switch {
		case n == "":
			return nil, fmt.Errorf("planner: an empty %s", what)
		case len(n) > maxLabelLen || strings.ContainsAny(n, "\n\r\t"):
			return nil, fmt.Errorf("planner: %s %.40q is not a name", what, n)
		case seen[k]:
			return nil, fmt.Errorf("planner: %s %q twice", what, n)
		}
		seen[k] = true
		out = append(out, n)
	}
	return out, nil
}

// plan is the plan on a proposal: its type and labels or entity types, the catalog's
// datasets found for them as the built-in planner finds them, the type's templates and
// the proposed metric (checked by the task's rules).
func (prop *Proposal) plan(desc string, cat *catalog.Catalog) (*Plan, error) {
	p := &Plan{Task: TaskSpec{Description: desc, Name: slug(desc)}}
	why := ""
	if prop.Reason != "" {
		why = fmt.Sprintf(" (%.200s)", prop.Reason)
	}
	switch prop.Type {
	case "classification":
		p.Task.Type = task.Classification
		p.reason(fmt.Sprintf("planner: type classification, labels %q%s", prop.Labels, why))
	case "multiple_choice":
		p.Task.Type, p.MultipleChoice = task.Classification, true
		p.reason("planner: type multiple choice (a classification over the choices' letters)" + why)
	case "extraction":
		p.Task.Type = task.Extraction
		p.reason(fmt.Sprintf("planner: type extraction, entity types %q%s", prop.EntityTypes, why))
	default:
		p.Task.Type = task.Generation
		p.reason("planner: type generation" + why)
	}
	if cat != nil {
		p.pickSources(cat, prop.Labels, prop.EntityTypes)
	}
	if p.Task.Type == task.Classification && !p.MultipleChoice && len(p.Task.Labels) == 0 {
		p.Task.Labels = prop.Labels
	}
	if p.Task.Type == task.Extraction && len(p.Task.EntityTypes) == 0 {
		p.Task.EntityTypes = prop.EntityTypes
	}
	p.templates(text.Words(desc))
	if prop.Metric != "" && prop.Metric != p.Task.Metric {
		p.Task.Metric = prop.Metric
		p.reason("planner: metric " + prop.Metric)
	}
	if p.Task.Metric == "pass_at_1" { // programs: many lines each
		p.Task.MultiLine = true
	}
	// The task's own rules (labels, types, the metric of its type) judge the proposal.
	if _, err := task.New(p.Task.Name, p.Task.Type, p.Task.Labels, p.Task.EntityTypes, p.Task.Metric); err != nil {
		return nil, fmt.Errorf("planner: %w", err)
	}
	return p, nil
}
