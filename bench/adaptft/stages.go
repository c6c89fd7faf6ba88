package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/task"
)

// scenario is a task's data as the generator sees it.
type scenario struct {
	name   string
	kind   string
	labels []string // labels, choice letters or entity types
	pool   []task.Example
	source string // where the examples come from, for the spec's table
	parent int    // examples the deployment is trained on
	// spec is the task's definition (task.yaml) without its data.
	spec taskSpec
}

func (sc *scenario) otherLabels(l string) []string {
	var out []string
	for _, x := range sc.labels {
		if x != l {
			out = append(out, x)
		}
	}
	return out
}

// scenarioSource says where a scenario's data are: a bundled task, or a dataset folder
// under the shared data (read by agent/catalog) and the splits that make the pool.
type scenarioSource struct {
	bundled string
	dir     string // under the data folder
	splits  []string
	kind    string
	// parent is how many examples the deployment is trained on (drawn from the pool
	// examples no stage uses).
	parent int
	// prompt, output and metric make the task of a dataset that is not a bundled task;
	// maxNew is a generated answer's budget in tokens (0: the task format's default).
	prompt, output, metric string
	maxNew                 int
}

// scenarios are AdaptFT's seven, one per kind of task the issue names.
var scenarios = map[string]scenarioSource{
	"clinc150":  {bundled: "clinc150", kind: kindLabel, parent: 600},
	"banking77": {bundled: "banking77", kind: kindLabel, parent: 600},
	"sms_spam": {dir: "classification/sms_spam", splits: []string{"data"}, kind: kindLabel, parent: 100,
		prompt: "{text}\nlabel:", output: " {label}", metric: "accuracy"},
	"conll2003": {bundled: "conll2003", kind: kindEntities, parent: 500},
	"arc_easy": {dir: "reasoning/arc_easy", splits: []string{"train", "validation"}, kind: kindChoice, parent: 200,
		prompt: "{text}\nanswer:", output: " {label}", metric: "accuracy"},
	"gsm8k": {dir: "math/gsm8k", splits: []string{"train"}, kind: kindAnswer, parent: 300,
		prompt: "{text}\nanswer:", output: " {output}", metric: "final_answer", maxNew: 256},
	// SAMSum's training split is not in the shared data: validation and test make the pool.
	"samsum": {dir: "summarization/samsum", splits: []string{"validation", "test"}, kind: kindAnswer, parent: 150,
		prompt: "{text}\nsummary:", output: " {output}", metric: "rouge_l", maxNew: 96},
}

func scenarioNames() []string {
	var out []string
	for k := range scenarios {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// loadScenario reads a scenario's pool: a bundled task's training split, or a catalog
// dataset's splits.
func loadScenario(name, dataDir string) (*scenario, error) {
	src, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (%v)", name, scenarioNames())
	}
	sc := &scenario{name: name, kind: src.kind, parent: src.parent}
	if src.bundled != "" {
		t, err := task.Load(src.bundled)
		if err != nil {
			return nil, err
		}
		if sc.pool, err = t.Split("train"); err != nil {
			return nil, err
		}
		sc.labels = append(append(sc.labels, t.Labels...), t.EntityTypes...)
		sc.source = "bundled task " + src.bundled + ", train split"
		sc.spec = taskSpec{Name: "adaptft-" + name, Type: t.Type, Prompt: t.Prompt, Output: t.Output, Metric: t.Metric,
			Labels: t.Labels, EntityTypes: t.EntityTypes}
		return sc, nil
	}
	dir := filepath.Join(dataDir, src.dir)
	c, err := catalog.Open(dir)
	if err != nil {
		return nil, err
	}
	if len(c.Datasets) != 1 {
		return nil, fmt.Errorf("%s: %d datasets found (skipped %v)", dir, len(c.Datasets), c.Skipped)
	}
	d := c.Datasets[0]
	for _, s := range src.splits {
		exs, _, err := d.Examples(s)
		if err != nil {
			return nil, err
		}
		for _, ex := range exs {
			ex.ID = s + "/" + ex.ID
			// A task's answer is one line (generation stops at the first newline): a
			// worked answer's steps are joined by spaces.
			ex.Output = strings.Join(strings.Fields(ex.Output), " ")
			sc.pool = append(sc.pool, ex)
		}
	}
	for l := range d.Labels {
		sc.labels = append(sc.labels, l)
	}
	slices.Sort(sc.labels)
	sc.source = fmt.Sprintf("%s (%v)", src.dir, src.splits)
	sc.spec = taskSpec{Name: "adaptft-" + name, Type: task.Generation, Prompt: src.prompt, Output: src.output, Metric: src.metric, MaxNewTokens: src.maxNew}
	if src.kind != kindAnswer {
		sc.spec.Type, sc.spec.Labels = task.Classification, sc.labels
	}
	return sc, nil
}

// taskSpec is a scenario's task.yaml (agent/task's format).
type taskSpec struct {
	Name         string            `yaml:"name"`
	Type         task.Type         `yaml:"type"`
	Prompt       string            `yaml:"prompt"`
	Output       string            `yaml:"output"`
	Metric       string            `yaml:"metric"`
	Labels       []string          `yaml:"labels,omitempty"`
	EntityTypes  []string          `yaml:"entity_types,omitempty"`
	MaxNewTokens int               `yaml:"max_new_tokens,omitempty"`
	Data         map[string]string `yaml:"data"`
}

// Stage settings (the issue's): poison rates per stage, logs per stage, the share seen
// by the agent, the share with fixable noise.
var (
	poisonRates = []float64{0, 0.15, 0.25, 0.40}
	fixableRate = 0.30
	seenShare   = 0.70
)

// logsPerStage is the "about 500"; a pool too small for four stages of it and
// the reserve gets a quarter of what the reserve leaves each.
const logsPerStage = 500

// validationN is how many of the pool examples no stage uses make the task's validation
// split (what the agent's gate scores), after the parent's.
const validationN = 300

// line is one generated log line with the truth about it.
type line struct {
	Example task.Example // as logged: perturbed input, expected answer (poison included)
	Source  string       // the pool example's id
	Stage   int
	Seen    bool     // in the logs the agent sees (else the stage's test part)
	Fixable []string // fixable perturbations applied
	Poison  string   // the poison kind, "" for none
}

// generate draws the four stages: fresh pool examples each, 70 % seen and 30 % test per
// stage; fixable noise on about 30 % of lines; poison on the stage's rate of the seen
// lines only (the test part keeps true answers: it scores models). The pool examples no
// stage uses come back as the reserve, in the draw's order: the parent's data and the
// validation split are its first examples, the agent's pool the rest.
func generate(sc *scenario, seed uint64) (stages [][]line, reserve []task.Example) {
	r := rand.New(rand.NewPCG(seed, 0xada9f7))
	n := min(logsPerStage, max(0, len(sc.pool)-sc.parent-validationN)/len(poisonRates))
	order := r.Perm(len(sc.pool))
	for _, i := range order[len(poisonRates)*n:] {
		reserve = append(reserve, sc.pool[i])
	}
	for s, rate := range poisonRates {
		var st []line
		idx := order[s*n : (s+1)*n]
		seen := int(float64(n)*seenShare + 0.5)
		nPoison := int(float64(seen)*rate + 0.5)
		for k, i := range idx {
			ex := sc.pool[i]
			ex.Entities = slices.Clone(ex.Entities)
			l := line{Source: ex.ID, Stage: s, Seen: k < seen}
			ex.ID = fmt.Sprintf("%s-s%d-%04d", sc.name, s, k)
			if l.Seen && k < nPoison { // the first nPoison seen lines (the order is random)
				l.Poison = applyOne(r, poison, &ex, sc)
			}
			if r.Float64() < fixableRate {
				if f := applyOne(r, fixable, &ex, sc); f != "" {
					l.Fixable = append(l.Fixable, f)
				}
			}
			l.Example = ex
			st = append(st, l)
		}
		// Mix the poisoned lines among the seen ones.
		r.Shuffle(seen, func(a, b int) { st[a], st[b] = st[b], st[a] })
		stages = append(stages, st)
	}
	return stages, reserve
}

// applyOne applies one perturbation of the list that fits the scenario, drawn at random
// (another when it cannot apply), and names it; "" when none could.
func applyOne(r *rand.Rand, ps []perturbation, ex *task.Example, sc *scenario) string {
	var fit []perturbation
	for _, p := range ps {
		if p.fits(sc.kind) {
			fit = append(fit, p)
		}
	}
	for _, i := range r.Perm(len(fit)) {
		if fit[i].apply(r, ex, sc) {
			return fit[i].name
		}
	}
	return ""
}
