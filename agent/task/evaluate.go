package task

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/metrics"
	"github.com/pioneer-ai/pioneer/model"
)

// EvalOptions configure Evaluate.
type EvalOptions struct {
	Batch        int   // prompts per forward pass; 0: 16
	MaxNewTokens int   // generation budget for extraction and generation; 0: 64
	EOS          []int // tokens that end a completion (generation_config.json's)
	PadID        int
	// MultiLine lets a generated completion run past a newline (free-form completions of
	// training records); a task's outputs are one line, so generation stops at the first.
	MultiLine bool
	// Progress, when set, is called after each batch with the examples done so far.
	Progress func(done, total int)
	// ScoreAllLabels scores every label of a classification task (the whole label tree
	// packed after the prompt) instead of searching the tree best first; both give the
	// same answers, the search in a fraction of the time (bench/classify).
	ScoreAllLabels bool
}

// budget gives an evaluation that sets no answer budget the task's, and lets the answers
// of a multi-line task run past a newline.
func (t *Task) budget(o *EvalOptions) {
	if o.MaxNewTokens <= 0 {
		o.MaxNewTokens = t.MaxNewTokens
	}
	if t.MultiLine {
		o.MultiLine = true
	}
}

func (o *EvalOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.MaxNewTokens <= 0 {
		o.MaxNewTokens = 64
	}
}

// promptLimit is the most prompt tokens an example may have: classification leaves room
// for the longest label and its end token, generation for at least a quarter of the
// generation budget (a batch of long prompts gets what room is left, up to the budget).
func (t *Task) promptLimit(maxPositions, labelDepth, maxNew int) int {
	if t.kind.constrained() {
		return maxPositions - labelDepth
	}
	return maxPositions - max(1, maxNew/4)
}

// fitPrompts tokenizes each example's prompt; an input whose prompt has more than limit
// tokens is cut at a word boundary (its end dropped) until it fits, keeping the prompt
// template's own text. It returns the prompts and which were cut.
func (t *Task) fitPrompts(tok model.Tokenizer, exs []Example, limit int) ([][]int, []bool, error) {
	prompts, cut := make([][]int, len(exs)), make([]bool, len(exs))
	for i, ex := range exs {
		ids, err := tok.Encode(t.PromptText(ex.Text), true)
		if err != nil {
			return nil, nil, fmt.Errorf("example %s: %w", ex.ID, err)
		}
		if len(ids) > limit {
			text, err := t.FitText(tok, ex.Text, limit)
			if err != nil {
				return nil, nil, fmt.Errorf("example %s: %w", ex.ID, err)
			}
			if ids, err = tok.Encode(t.PromptText(text), true); err != nil {
				return nil, nil, fmt.Errorf("example %s: %w", ex.ID, err)
			}
			cut[i] = true
		}
		prompts[i] = ids
	}
	return prompts, cut, nil
}

// FitText cuts an input at a word boundary (its end dropped) until its prompt has at most
// limit tokens, keeping the prompt template's own text; an input that fits comes back
// whole. It is an error when the template alone does not fit.
func (t *Task) FitText(tok model.Tokenizer, text string, limit int) (string, error) {
	if ids, err := tok.Encode(t.PromptText(text), true); err != nil || len(ids) <= limit {
		return text, err
	}
	words := strings.Fields(text)
	fits := func(n int) (bool, int, error) {
		ids, err := tok.Encode(t.PromptText(strings.Join(words[:n], " ")), true)
		return len(ids) <= limit, len(ids), err
	}
	lo, hi := 0, len(words) // the longest fitting prefix has lo words
	for lo < hi {
		mid := (lo + hi + 1) / 2
		ok, _, err := fits(mid)
		if err != nil {
			return "", err
		}
		if ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	ok, n, err := fits(lo)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("the prompt template alone has %d tokens, more than the %d that fit in the model's context", n, limit)
	}
	return strings.Join(words[:lo], " "), nil
}

// byLength orders example indices by prompt length (stable), so that a batch holds
// prompts of about the same length: less padding, and one long prompt does not shrink
// the generation budget of short ones.
func byLength(prompts [][]int) []int {
	order := make([]int, len(prompts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(prompts[order[a]]) < len(prompts[order[b]]) })
	return order
}

// pick returns the prompts at the given indices.
func pick(prompts [][]int, idx []int) [][]int {
	out := make([][]int, len(idx))
	for k, i := range idx {
		out[k] = prompts[i]
	}
	return out
}

// Prediction is the model's answer to one example.
type Prediction struct {
	ID       string   `json:"id"`
	Output   string   `json:"output"`             // the completion (classification: the label chosen)
	Label    string   `json:"label,omitempty"`    // classification
	Entities []Entity `json:"entities,omitempty"` // extraction
	Correct  bool     `json:"correct"`            // label right / entity set exact / exact match
	// FormatOK is false when a generated completion did not follow the output format.
	FormatOK bool `json:"format_ok"`
	// Score is the example's own metric value: 1/0 for classification, the example's
	// entity F1 for extraction, ROUGE-L or exact match for generation.
	Score float64 `json:"score"`
}

// Result is a model's evaluation on a set of examples.
type Result struct {
	Metric      string       `json:"metric"`
	Value       float64      `json:"value"`
	N           int          `json:"n"`
	Predictions []Prediction `json:"predictions"`
	// Truncated counts inputs cut to fit the model's context (their end dropped).
	Truncated int                    `json:"truncated,omitempty"`
	PerType   map[string]metrics.PRF `json:"per_type,omitempty"` // extraction: per entity type
	Entities  *metrics.PRF           `json:"entities,omitempty"` // extraction: over every type (micro)
	// Confusion counts (gold, predicted) label pairs of classification mistakes.
	Confusion map[string]map[string]int `json:"confusion,omitempty"`
}

// Evaluate runs the model on the examples and scores it with the task's metric:
// Predict on their prompts (cut to fit the model's context), then Score. Classification
// answers are constrained to the label set; extraction and generation are greedy. It
// stops between batches when ctx is done.
func (t *Task) Evaluate(ctx context.Context, m model.CausalLM, tok model.Tokenizer, exs []Example, o EvalOptions) (*Result, error) {
	if len(exs) == 0 {
		return nil, fmt.Errorf("evaluate %s: no examples", t.Name)
	}
	rs, err := t.EvaluateSets(ctx, m, tok, [][]Example{exs}, o)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// EvaluateSets evaluates the model on several sets of examples at once, each scored on
// its own as Evaluate scores it; a model's answer depends on the input alone, so an input
// in several sets, or several times in one, is run once. An empty set's result is nil.
func (t *Task) EvaluateSets(ctx context.Context, m model.CausalLM, tok model.Tokenizer, sets [][]Example, o EvalOptions) ([]*Result, error) {
	var distinct []Example
	at := map[string]int{} // input -> its index in distinct
	for _, set := range sets {
		for _, ex := range set {
			if _, ok := at[ex.Text]; !ok {
				at[ex.Text] = len(distinct)
				distinct = append(distinct, ex)
			}
		}
	}
	out := make([]*Result, len(sets))
	if len(distinct) == 0 {
		return out, nil
	}
	t.budget(&o)
	o.defaults()
	depth := 0
	if t.kind.constrained() {
		_, d, err := t.labelTokens(tok, o.EOS)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", t.Name, err)
		}
		depth = d
	}
	prompts, cut, err := t.fitPrompts(tok, distinct, t.promptLimit(m.Info().MaxPositions, depth, o.MaxNewTokens))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", t.Name, err)
	}
	answers, err := t.Predict(ctx, m, tok, prompts, o)
	if err != nil {
		return nil, err
	}
	for k, set := range sets {
		if len(set) == 0 {
			continue
		}
		outs, truncated := make([]string, len(set)), 0
		for i, ex := range set {
			j := at[ex.Text]
			outs[i] = answers[j]
			if cut[j] {
				truncated++
			}
		}
		if out[k], err = t.Score(outs, set); err != nil {
			return nil, err
		}
		out[k].Truncated = truncated
	}
	return out, nil
}

// Predict answers tokenized prompts: the label chosen for each (classification,
// constrained to the label set, every label scored in one pass), or the completion
// generated greedily (its first line unless o.MultiLine). Prompts of about the same
// length are batched together. It stops between batches when ctx is done.
func (t *Task) Predict(ctx context.Context, m model.CausalLM, tok model.Tokenizer, prompts [][]int, o EvalOptions) ([]string, error) {
	t.budget(&o)
	o.defaults()
	outs := make([]string, len(prompts))
	order := byLength(prompts)
	var labels [][]int
	if t.kind.constrained() {
		var err error
		if labels, _, err = t.labelTokens(tok, o.EOS); err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", t.Name, err)
		}
	}
	maxPos := m.Info().MaxPositions
	for start := 0; start < len(prompts); start += o.Batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("evaluate %s: stopped after %d of %d examples: %w", t.Name, start, len(prompts), err)
		}
		idx := order[start:min(start+o.Batch, len(prompts))]
		batch := pick(prompts, idx)
		if t.kind.constrained() {
			best, err := classify(m, batch, labels, o.Batch, o.ScoreAllLabels)
			if err != nil {
				return nil, fmt.Errorf("evaluate %s: %w", t.Name, err)
			}
			for k, c := range best {
				outs[idx[k]] = t.Labels[c]
			}
		} else {
			longest := len(batch[len(batch)-1])
			opts := infer.GenerateOptions{MaxNewTokens: min(o.MaxNewTokens, maxPos-longest), StopTokens: o.EOS, PadID: o.PadID,
				Decode: func(ids []int) string { return tok.Decode(ids, true) }}
			if !o.MultiLine {
				opts.StopStrings = []string{"\n"}
			}
			gen, err := infer.Generate(m, batch, opts)
			if err != nil {
				return nil, fmt.Errorf("evaluate %s: %w", t.Name, err)
			}
			for k, g := range gen {
				out := tok.Decode(g.Tokens, true)
				if !o.MultiLine {
					out = strings.SplitN(out, "\n", 2)[0]
				}
				outs[idx[k]] = out
			}
		}
		if o.Progress != nil {
			o.Progress(start+len(idx), len(prompts))
		}
	}
	return outs, nil
}

// Score scores the model's outputs (what Predict returned: labels, or completions) against
// the examples with the task's metric, as the type scores (classification.go,
// extraction.go, generation.go).
func (t *Task) Score(outs []string, exs []Example) (*Result, error) {
	if len(outs) != len(exs) {
		return nil, fmt.Errorf("score %s: %d outputs for %d examples", t.Name, len(outs), len(exs))
	}
	if len(exs) == 0 {
		return nil, fmt.Errorf("score %s: no examples", t.Name)
	}
	res := &Result{Metric: t.Metric, N: len(exs), Predictions: make([]Prediction, len(exs))}
	if err := t.kind.score(t, outs, exs, res); err != nil {
		return nil, fmt.Errorf("score %s: %w", t.Name, err)
	}
	return res, nil
}

// Pair is a confusion pair: gold label, predicted label, how often.
type Pair struct {
	Gold, Predicted string
	Count           int
}

// TopConfusions lists the most frequent classification mistakes, most frequent first.
func (r *Result) TopConfusions(n int) []Pair {
	var out []Pair
	for g, row := range r.Confusion {
		for p, c := range row {
			out = append(out, Pair{g, p, c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Gold+out[i].Predicted < out[j].Gold+out[j].Predicted
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// classify picks each prompt's most likely label: by best-first search of the label tree
// (infer.ClassifyBest), or, asked to or for sliding-window models, by scoring the whole
// packed tree.
func classify(m model.CausalLM, prompts, labels [][]int, batch int, all bool) ([]int, error) {
	out := make([]int, len(prompts))
	if all || m.Info().SlidingWindow > 0 {
		cls, err := infer.Classify(m, prompts, labels, batch)
		if err != nil {
			return nil, err
		}
		for i, c := range cls {
			out[i] = c.Label
		}
		return out, nil
	}
	best, err := infer.ClassifyBest(m, prompts, labels, batch, 0)
	if err != nil {
		return nil, err
	}
	for i, b := range best {
		out[i] = b.Label
	}
	return out, nil
}

// LabelTokens are the completions a classification is chosen among, in t.Labels order:
// each label's target, then eos[0] when given (what Evaluate scores).
func (t *Task) LabelTokens(tok model.Tokenizer, eos []int) ([][]int, error) {
	if !t.kind.constrained() {
		return nil, fmt.Errorf("%s: a %s task has no label set", t.Name, t.Type)
	}
	labels, _, err := t.labelTokens(tok, eos)
	return labels, err
}

// labelTokens are the completions Classify scores: each label's target, then the first
// end-of-sequence token; depth is the longest, in tokens.
func (t *Task) labelTokens(tok model.Tokenizer, eos []int) (labels [][]int, depth int, err error) {
	labels = make([][]int, len(t.Labels))
	for j, l := range t.Labels {
		if labels[j], err = tok.Encode(t.LabelTarget(l), false); err != nil {
			return nil, 0, fmt.Errorf("label %q: %w", l, err)
		}
		if len(eos) > 0 {
			labels[j] = append(labels[j], eos[0])
		}
		depth = max(depth, len(labels[j]))
	}
	return labels, depth, nil
}

// EntityTypeScores returns, for each example of an extraction task and each of its
// entities in order, the model's log-probability of writing that entity with each entity
// type (t.EntityTypes order) — "TYPE: span" — after the prompt and the example's entities
// before it, as the training target writes them. Triage uses it to ask the deployed
// model which type it would give a logged entity.
func (t *Task) EntityTypeScores(ctx context.Context, m model.CausalLM, tok model.Tokenizer, exs []Example, o EvalOptions) ([][][]float64, error) {
	if t.Type != Extraction {
		return nil, fmt.Errorf("entity type scores: %s is not an extraction task", t.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.budget(&o)
	o.defaults()
	prefix, _, _ := strings.Cut(t.Output, "{entities}")
	// Each (entity, type)'s tokens after the prompt, in order; the longest bounds the
	// room the prompts may take.
	var parts []entityTokens
	depth := 0
	for _, ex := range exs {
		for k, e := range ex.Entities {
			for _, typ := range t.EntityTypes {
				c, err := t.entityContinuation(tok, prefix, ex.Entities[:k], Entity{Type: typ, Text: e.Text})
				if err != nil {
					return nil, fmt.Errorf("entity type scores %s: example %s: %w", t.Name, ex.ID, err)
				}
				parts = append(parts, c)
				depth = max(depth, len(c.before)+len(c.cont))
			}
		}
	}
	fitted, _, err := t.fitPrompts(tok, exs, m.Info().MaxPositions-depth)
	if err != nil {
		return nil, fmt.Errorf("entity type scores %s: %w", t.Name, err)
	}
	prompts := make([][]int, 0, len(parts))
	conts := make([][]int, 0, len(parts))
	j := 0
	for i, ex := range exs {
		for range len(ex.Entities) * len(t.EntityTypes) {
			prompts = append(prompts, append(append([]int(nil), fitted[i]...), parts[j].before...))
			conts = append(conts, parts[j].cont)
			j++
		}
	}
	scored, err := infer.Score(m, prompts, conts, o.Batch)
	if err != nil {
		return nil, fmt.Errorf("entity type scores %s: %w", t.Name, err)
	}
	out := make([][][]float64, len(exs))
	j = 0
	for i, ex := range exs {
		out[i] = make([][]float64, len(ex.Entities))
		for k := range ex.Entities {
			out[i][k] = make([]float64, len(t.EntityTypes))
			for ti := range t.EntityTypes {
				out[i][k][ti] = scored[j].LogProb
				j++
			}
		}
	}
	return out, nil
}

type entityTokens struct{ before, cont []int }

// entityContinuation tokenizes the completion up to an entity (the output prefix and
// the entities before it, "TYPE: span;") and the entity itself (" TYPE: span", or
// without the space when it is the first and the prefix ends in one), split where the
// training target's own tokens would split.
func (t *Task) entityContinuation(tok model.Tokenizer, prefix string, before []Entity, e Entity) (entityTokens, error) {
	if len(before) == 0 {
		cont, err := tok.Encode(prefix+e.Type+": "+e.Text, false)
		return entityTokens{cont: cont}, err
	}
	head, err := tok.Encode(prefix+FormatEntities(before)+";", false)
	if err != nil {
		return entityTokens{}, err
	}
	cont, err := tok.Encode(" "+e.Type+": "+e.Text, false)
	return entityTokens{before: head, cont: cont}, err
}
