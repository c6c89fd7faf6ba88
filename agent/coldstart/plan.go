// Package coldstart is cold-start mode: from a task description (and optionally a few
// examples) to a task definition, training data from a local catalog, a frozen
// evaluation set and a trained model.
//
// This file is the first stage, task understanding: the built-in planner, deterministic
// and offline, reads the description, the user's examples and the catalog's cards and
// writes the task (type, labels or entity types, prompt, output, metric) with the
// datasets that can supply it and how their labels map onto the task's.
package coldstart

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// Plan is the planner's task and the data it found for it.
type Plan struct {
	Task TaskSpec `json:"task"`
	// MultipleChoice: a classification over choice letters, each example a question
	// with its choices lettered (agent/catalog's multiple-choice datasets).
	MultipleChoice bool     `json:"multiple_choice,omitempty"`
	Sources        []Source `json:"sources"`
	// Reasons say how each decision was made, in order, for the report.
	Reasons []string `json:"reasons"`
	// PlannerFallback says why a planner endpoint's plan was not used (PlanWith), "" when
	// it was or there was none.
	PlannerFallback string `json:"planner_fallback,omitempty"`
}

// TaskSpec is the task as task.yaml writes it (agent/task), without its data files.
type TaskSpec struct {
	Name        string    `json:"name" yaml:"name"`
	Type        task.Type `json:"type" yaml:"type"`
	Description string    `json:"description" yaml:"description"`
	Labels      []string  `json:"labels,omitempty" yaml:"labels,omitempty"`
	EntityTypes []string  `json:"entity_types,omitempty" yaml:"entity_types,omitempty"`
	Prompt      string    `json:"prompt" yaml:"prompt"`
	Output      string    `json:"output" yaml:"output"`
	Metric      string    `json:"metric" yaml:"metric"`
	// MaxNewTokens is a generated answer's budget (generation; set from the data).
	MaxNewTokens int `json:"max_new_tokens,omitempty" yaml:"max_new_tokens,omitempty"`
	// MultiLine: answers are programs, generated to the end of the sequence (pass_at_1).
	MultiLine bool `json:"multiline,omitempty" yaml:"multiline,omitempty"`
}

// Source is a catalog dataset the task's data comes from, with the map from its labels
// (or entity types) to the task's; values it does not map are left out of the data.
type Source struct {
	Dataset string            `json:"dataset"`
	Dir     string            `json:"dir"`
	License string            `json:"license,omitempty"`
	Score   float64           `json:"score"`
	Map     map[string]string `json:"map,omitempty"`
	// Unmapped are the dataset's labels (or types) with no task label, with their counts.
	Unmapped map[string]int `json:"unmapped,omitempty"`
	// Tests: the dataset's answers come with tests (catalog.Card.Tests).
	Tests bool `json:"tests,omitempty"`
}

// cue words of each task type (stems as agent/catalog's ranking makes them, matched on
// the description's words).
var (
	extractionCues = []string{"extract", "pull", "entity", "entities", "ner", "named", "tag", "span", "spans", "mention", "mentions"}
	generationCues = []string{"summarise", "summarize", "summary", "summaries", "translate", "translation", "solve", "generate", "write",
		"rewrite", "paraphrase", "code", "program", "function", "explain", "math", "problems", "question", "questions", "number", "reply"}
	multipleChoiceCues = []string{"choice", "choices", "options", "choose", "option"}
	classificationCues = []string{"classify", "classification", "categorise", "categorize", "category", "categories", "label", "detect",
		"spam", "sentiment", "intent", "intents", "topic", "whether", "positive", "negative", "tell"}
)

// entityNouns maps the words people use for kinds of entities onto the usual type names
// (CoNLL-2003's PER, ORG, LOC, MISC and OntoNotes-style others).
var entityNouns = map[string]string{
	"people": "PER", "person": "PER", "persons": "PER", "names": "PER", "individuals": "PER",
	"companies": "ORG", "company": "ORG", "organisations": "ORG", "organizations": "ORG", "organization": "ORG",
	"organisation": "ORG", "institutions": "ORG", "firms": "ORG", "teams": "ORG",
	"places": "LOC", "place": "LOC", "locations": "LOC", "location": "LOC", "cities": "LOC", "countries": "LOC", "regions": "LOC",
	"dates": "DATE", "times": "TIME", "products": "PRODUCT", "events": "EVENT", "amounts": "MONEY", "prices": "MONEY",
	"miscellaneous": "MISC", "nationalities": "MISC",
}

// labelListRe finds a label list in a description: "as spam or not", "into sports,
// politics and business", "is positive or negative".
var labelListRe = regexp.MustCompile(`(?i)\b(?:as|into|is|are|either)\s+((?:[\w'-]+(?:\s+[\w'-]+)?\s*,\s*)*[\w'-]+(?:\s+[\w'-]+)?\s*,?\s+(?:or|and)\s+(?:not|[\w'-]+(?:\s+[\w'-]+)?))`)

// PlanTask plans the task a description asks for. examples are the user's (may be nil);
// cat the catalog to draw data from (may be nil).
func PlanTask(desc string, examples []task.Example, cat *catalog.Catalog) (*Plan, error) {
	desc = strings.TrimSpace(desc)
	if desc == "" {
		return nil, fmt.Errorf("coldstart: the task description is empty")
	}
	p := &Plan{Task: TaskSpec{Description: desc, Name: slug(desc)}}
	words := text.Words(desc)
	has := func(cues []string) int {
		n := 0
		for _, w := range words {
			if slices.Contains(cues, w) {
				n++
			}
		}
		return n
	}
	var types []string
	for _, w := range words {
		if t, ok := entityNouns[w]; ok && !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	labels := labelsOf(desc)

	// The type: the user's examples say it outright; otherwise the description's cues.
	ent, gen, cls, mc := has(extractionCues), has(generationCues), has(classificationCues), has(multipleChoiceCues)
	switch {
	case examplesOf(examples, task.Extraction):
		p.Task.Type = task.Extraction
		p.reason("type extraction: the examples carry entities")
	case examplesOf(examples, task.Classification):
		p.Task.Type = task.Classification
		p.reason("type classification: the examples carry labels")
	case examplesOf(examples, task.Generation):
		p.Task.Type = task.Generation
		p.reason("type generation: the examples carry free-form outputs")
	case mc > 0 && len(labels) < 2:
		p.Task.Type, p.MultipleChoice = task.Classification, true
		p.reason("type multiple choice (a classification over the choices' letters): the description speaks of choices or options")
	case ent > 0 && len(types) > 0 || ent >= 2:
		p.Task.Type = task.Extraction
		p.reason(fmt.Sprintf("type extraction: the description asks to pull out kinds of entities (%s)", strings.Join(types, ", ")))
	case len(labels) >= 2 || cls > gen:
		p.Task.Type = task.Classification
		why := "the description names classes"
		if len(labels) >= 2 {
			why = fmt.Sprintf("the description names the classes %q", labels)
		}
		p.reason("type classification: " + why)
	case gen > 0:
		p.Task.Type = task.Generation
		p.reason("type generation: the description asks for a free-form answer")
	default:
		p.Task.Type = task.Classification
		p.reason("type classification: no cue for another type (the default)")
	}

	// Labels from the examples when they have them.
	if p.Task.Type == task.Classification {
		if ls := labelSet(examples); len(ls) >= 2 {
			labels = ls
			p.reason(fmt.Sprintf("labels from the examples: %q", labels))
		}
	}
	if p.Task.Type == task.Extraction {
		for _, e := range examples {
			for _, en := range e.Entities {
				if !slices.Contains(types, en.Type) {
					types = append(types, en.Type)
				}
			}
		}
	}

	// Data: the catalog's datasets of the same kind, best first, whose labels map.
	if cat != nil {
		p.pickSources(cat, labels, types)
	}
	switch p.Task.Type {
	case task.Classification:
		if len(p.Task.Labels) == 0 {
			p.Task.Labels = labels
		}
		if len(p.Task.Labels) < 2 {
			return nil, fmt.Errorf("coldstart: a classification task needs at least two labels: name them in the description (%q) or give labelled examples", "classify X as A or B")
		}
	case task.Extraction:
		if len(p.Task.EntityTypes) == 0 {
			p.Task.EntityTypes = types
		}
		if len(p.Task.EntityTypes) == 0 {
			return nil, fmt.Errorf("coldstart: an extraction task needs entity types: name them in the description (people, companies, places, ...) or give examples with entities")
		}
	}
	p.templates(words)
	return p, nil
}

func (p *Plan) reason(s string) { p.Reasons = append(p.Reasons, s) }

// examplesOf reports whether every example has the answer of a task type.
func examplesOf(exs []task.Example, t task.Type) bool {
	if len(exs) == 0 {
		return false
	}
	for _, e := range exs {
		switch t {
		case task.Extraction:
			if len(e.Entities) == 0 {
				return false
			}
		case task.Classification:
			if e.Label == "" {
				return false
			}
		case task.Generation:
			if e.Output == "" {
				return false
			}
		}
	}
	return true
}

func labelSet(exs []task.Example) []string {
	var out []string
	for _, e := range exs {
		if e.Label != "" && !slices.Contains(out, e.Label) {
			out = append(out, e.Label)
		}
	}
	sort.Strings(out)
	return out
}

// labelsOf reads a label list from the description: "as spam or not" gives spam and
// "not spam"; "into sports, politics and business" the three.
func labelsOf(desc string) []string {
	m := labelListRe.FindStringSubmatch(desc)
	if m == nil {
		return nil
	}
	parts := regexp.MustCompile(`\s*,\s*|\s+(?:or|and)\s+`).Split(m[1], -1)
	var out []string
	for _, s := range parts {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.TrimPrefix(s, "either ")
		if s == "" {
			continue
		}
		if s == "not" && len(out) > 0 {
			s = "not " + out[0]
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// relevanceShare is how relevant, against the best dataset of the task's kind, another
// must be to be used too.
const relevanceShare = 0.6

// pickSources ranks the catalog for the description and keeps the datasets of the
// task's kind whose labels (entity types) map onto the task's; with no labels named,
// the best dataset's labels become the task's.
func (p *Plan) pickSources(cat *catalog.Catalog, labels, types []string) {
	want := map[task.Type]catalog.Kind{task.Classification: catalog.Classification, task.Extraction: catalog.Extraction, task.Generation: catalog.Generation}[p.Task.Type]
	if p.MultipleChoice {
		want = catalog.MultipleChoice
	}
	query := labels
	if p.Task.Type == task.Extraction {
		query = types
	}
	best := 0.0
	for _, m := range cat.Rank(p.Task.Description, query) {
		d := m.Dataset
		if d.Kind != want {
			continue
		}
		// Datasets far less relevant than the best one of the kind are not the task's.
		if best == 0 {
			best = m.Score
		} else if m.Score < relevanceShare*best {
			p.reason(fmt.Sprintf("dataset %s left out: relevance %.2f, under %.0f %% of the best's %.2f", d.Name, m.Score, 100*relevanceShare, best))
			continue
		}
		src := Source{Dataset: d.Name, Dir: d.Dir, License: d.License, Score: m.Score, Tests: d.Tests != ""}
		switch want {
		case catalog.MultipleChoice:
			// The letters of every chosen dataset are the task's labels.
			for l := range d.Labels {
				if !slices.Contains(p.Task.Labels, l) {
					p.Task.Labels = append(p.Task.Labels, l)
				}
			}
			slices.Sort(p.Task.Labels)
			src.Map, _ = mapLabels(d.Labels, p.Task.Labels)
		case catalog.Classification:
			if len(labels) == 0 && len(p.Task.Labels) == 0 {
				// No labels named: the best-ranked dataset's become the task's.
				p.Task.Labels = sortedKeys(d.Labels)
				p.reason(fmt.Sprintf("labels: none named; the %d of %s, the best-ranked dataset of the task's kind", len(p.Task.Labels), d.Name))
			}
			target := labels
			if len(p.Task.Labels) > 0 {
				target = p.Task.Labels
			}
			src.Map, src.Unmapped = mapLabels(d.Labels, target)
			if !coversAll(src.Map, target) {
				p.reason(fmt.Sprintf("dataset %s left out: its labels do not map onto %q (%d of its labels, %s)", d.Name, target, len(d.Labels), preview(d.Labels)))
				continue
			}
		case catalog.Extraction:
			target := types
			if len(target) == 0 {
				target = sortedKeys(d.Types)
				p.Task.EntityTypes = target
				p.reason(fmt.Sprintf("entity types: none named; those of %s", d.Name))
			}
			src.Map, src.Unmapped = mapLabels(d.Types, target)
			if len(src.Map) == 0 {
				p.reason(fmt.Sprintf("dataset %s left out: none of its entity types (%s) is one of %q", d.Name, preview(d.Types), target))
				continue
			}
		}
		if dup := p.sameAs(d); dup != "" {
			p.reason(fmt.Sprintf("dataset %s (%s) left out: the same data as %s", d.Name, d.Dir, dup))
			continue
		}
		p.Sources = append(p.Sources, src)
		p.reason(fmt.Sprintf("dataset %s (%s): relevance %.2f, %s", d.Name, d.Dir, m.Score, d.Describe()))
	}
	if len(p.Sources) == 0 {
		p.reason("no dataset in the catalog supplies this task")
	}
}

// sameAs names a source already chosen with the same name and split sizes as d (a
// bundled task made from a catalog folder), or "".
func (p *Plan) sameAs(d *catalog.Dataset) string {
	for _, s := range p.Sources {
		if s.Dataset == d.Name {
			return s.Dir
		}
	}
	return ""
}

// mapLabels maps a dataset's labels onto the task's: the same name up to case, spacing,
// _ and -, or a plural; in a two-label dataset, a task label "not X" takes the label
// that is not X.
func mapLabels(have map[string]int, target []string) (map[string]string, map[string]int) {
	m := map[string]string{}
	norm := func(s string) string {
		s = strings.Join(text.Words(strings.NewReplacer("_", " ", "-", " ").Replace(s)), " ")
		return strings.TrimSuffix(s, "s")
	}
	for l := range have {
		for _, t := range target {
			if norm(l) == norm(t) {
				m[l] = t
			}
		}
	}
	if len(have) == 2 {
		for _, t := range target {
			x, ok := strings.CutPrefix(t, "not ")
			if !ok {
				continue
			}
			for l := range have {
				if _, done := m[l]; !done && norm(l) != norm(x) {
					if _, xThere := have[x]; xThere || mapsTo(m, x) {
						m[l] = t
					}
				}
			}
		}
	}
	unmapped := map[string]int{}
	for l, n := range have {
		if _, ok := m[l]; !ok {
			unmapped[l] = n
		}
	}
	return m, unmapped
}

func mapsTo(m map[string]string, t string) bool {
	for _, v := range m {
		if v == t {
			return true
		}
	}
	return false
}

func coversAll(m map[string]string, target []string) bool {
	for _, t := range target {
		if !mapsTo(m, t) {
			return false
		}
	}
	return len(target) > 0
}

func preview(m map[string]int) string {
	ks := sortedKeys(m)
	if len(ks) > 6 {
		return strings.Join(ks[:6], ", ") + ", ..."
	}
	return strings.Join(ks, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// templates writes the prompt, output and metric for the type: the answer's name in
// the prompt comes from the description (intent, sentiment, topic, category, summary,
// answer), the metric from what is asked (ROUGE-L for summaries).
func (p *Plan) templates(words []string) {
	pick := func(def string, names ...string) string {
		for _, n := range names {
			if slices.Contains(words, n) || slices.Contains(words, n+"s") {
				return n
			}
		}
		return def
	}
	switch p.Task.Type {
	case task.Classification:
		if p.MultipleChoice {
			p.Task.Prompt, p.Task.Output, p.Task.Metric = "{text}\nanswer:", " {label}", "accuracy"
			break
		}
		p.Task.Prompt = "{text}\n" + pick("label", "intent", "sentiment", "topic", "category", "emotion", "language") + ":"
		p.Task.Output = " {label}"
		p.Task.Metric = "accuracy"
	case task.Extraction:
		p.Task.Prompt = "{text}\nentities:"
		p.Task.Output = " {entities}"
		p.Task.Metric = "entity_f1"
	default:
		p.Task.Metric = "exact_match"
		name := "answer"
		if slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, "summar") }) {
			name, p.Task.Metric = "summary", "rouge_l"
		} else if slices.Contains(words, "translate") || slices.Contains(words, "translation") {
			name, p.Task.Metric = "translation", "rouge_l"
		} else if p.codeWithTests(words) {
			// Programs with tests: run against them (pass_at_1), written over many lines.
			name, p.Task.Metric, p.Task.MultiLine = "code", "pass_at_1", true
		} else if slices.ContainsFunc(words, func(w string) bool {
			return w == "math" || w == "maths" || w == "arithmetic" || w == "number" || w == "numeric"
		}) {
			p.Task.Metric = "final_answer" // a worked answer is judged by its final answer
		}
		p.Task.Prompt = "{text}\n" + name + ":"
		p.Task.Output = " {output}"
	}
	p.reason(fmt.Sprintf("prompt %q, output %q, metric %s", p.Task.Prompt, p.Task.Output, p.Task.Metric))
}

// codeWithTests reports whether the description asks for code and every source's
// answers come with tests to run them against.
func (p *Plan) codeWithTests(words []string) bool {
	if !slices.ContainsFunc(words, func(w string) bool {
		return w == "code" || w == "python" || w == "program" || w == "function" || w == "functions"
	}) || len(p.Sources) == 0 {
		return false
	}
	for _, s := range p.Sources {
		if !s.Tests {
			return false
		}
	}
	return true
}

// slug names the task from the description's first content words.
func slug(desc string) string {
	var parts []string
	for _, w := range text.Words(desc) {
		if len(parts) == 4 {
			break
		}
		if len(w) > 2 && !slices.Contains([]string{"the", "and", "for", "from", "with", "into", "classify", "pull", "out", "answer"}, w) {
			parts = append(parts, w)
		}
	}
	if len(parts) == 0 {
		return "task"
	}
	return strings.Join(parts, "-")
}
