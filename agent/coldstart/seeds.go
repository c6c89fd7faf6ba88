package coldstart

// This file is the teacher's part of data acquisition: when the catalog gives a label
// too few examples (or a generation task too few pairs, or nothing at all), a teacher
// behind an OpenAI-compatible endpoint writes seed examples from the description and a
// few examples of the label; they pass the same poison triage as production's logged
// lines, duplicates and anything in a catalog test split go, and the rest join the pool.

import (
	"context"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/agent/triage"
)

// Seeding bounds.
const (
	seedPerLabel   = 48  // a classification label with fewer examples is topped up to this
	seedPairs      = 192 // a generation pool with fewer pairs is topped up to this
	seedBatch      = 12  // lines asked for per request
	seedShown      = 3   // examples shown per request
	seedPairSep    = "|||"
	dropSeedPoison = "poison (triage)"
	dropNotInput   = "not an input (a heading, or an answer's name alone)"
)

// Seeds records what the teacher was asked for and what of it was kept.
type Seeds struct {
	Asked        int            `json:"asked"`   // examples asked for
	Written      int            `json:"written"` // lines the teacher wrote
	Kept         int            `json:"kept"`
	Dropped      map[string]int `json:"dropped,omitempty"` // by reason
	KeptPerLabel map[string]int `json:"kept_per_label,omitempty"`
	// Note says why nothing was asked for (the catalog gave enough, a task kind the
	// teacher does not write); Error the teacher's failure that ended the asking.
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// String says in a line what the teacher wrote and what was kept.
func (s *Seeds) String() string {
	if s == nil {
		return "no teacher"
	}
	if s.Note != "" {
		return s.Note
	}
	out := fmt.Sprintf("asked for %d seed examples, %d written, %d kept", s.Asked, s.Written, s.Kept)
	if len(s.Dropped) > 0 {
		var ds []string
		for _, k := range sortedKeys(s.Dropped) {
			ds = append(ds, fmt.Sprintf("%d %s", s.Dropped[k], k))
		}
		out += " (left out: " + strings.Join(ds, ", ") + ")"
	}
	if s.Error != "" {
		out += "; the teacher failed, asking stopped: " + s.Error
	}
	return out
}

// seedGoal is one thing to ask for: examples of a label (generation: pairs).
type seedGoal struct {
	label string
	need  int
	shown []task.Example
}

// Seed tops the pool up with the teacher's examples where it is thin. tested holds the
// normalised inputs of every catalog test split. A teacher that fails (after its
// retries) ends the asking: what it wrote before is kept, the error recorded, never
// returned; only a stop request is.
func Seed(ctx context.Context, tc *teacher.Client, p *Plan, user []task.Example, pool *Pool, tested map[string]bool) (*Seeds, error) {
	rec := &Seeds{Dropped: map[string]int{}, KeptPerLabel: map[string]int{}}
	t, err := task.New(p.Task.Name, p.Task.Type, p.Task.Labels, p.Task.EntityTypes, p.Task.Metric)
	if err != nil {
		return nil, err
	}
	// The user's examples (shown first) and the pool's, each input once: the pool may
	// hold the user's examples already (Pool.AddUser).
	var all []task.Example
	have := map[string]bool{}
	for _, ex := range append(append([]task.Example(nil), user...), pool.Examples...) {
		if k := norm(ex.Text); !have[k] {
			have[k] = true
			all = append(all, ex)
		}
	}
	var goals []seedGoal
	switch {
	case p.Task.Type == task.Classification && !p.MultipleChoice:
		by := map[string][]task.Example{}
		for _, ex := range all {
			by[ex.Label] = append(by[ex.Label], ex)
		}
		for _, l := range p.Task.Labels {
			if have := len(by[l]); have < seedPerLabel {
				goals = append(goals, seedGoal{label: l, need: seedPerLabel - have, shown: by[l][:min(seedShown, len(by[l]))]})
			}
		}
	case p.Task.Type == task.Generation:
		if len(all) < seedPairs {
			goals = append(goals, seedGoal{need: seedPairs - len(all), shown: all[:min(seedShown, len(all))]})
		}
	default:
		rec.Note = "the teacher writes seed examples for classification and generation tasks only"
		return rec, nil
	}
	if len(goals) == 0 {
		rec.Note = "the catalog gives every label enough examples"
		return rec, nil
	}
	seen := map[string]bool{}
	for _, ex := range pool.Examples {
		seen[norm(ex.Text)] = true
	}
	var written []task.Example
	for _, g := range goals {
		rec.Asked += g.need
		for k := 0; k < g.need && rec.Error == ""; k += seedBatch {
			n := min(seedBatch, g.need-k)
			reply, err := tc.Complete(ctx, seedPrompt(p, g, n), 0.8)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				rec.Error = err.Error()
				break
			}
			for _, line := range teacher.Lines(reply, n) {
				rec.Written++
				line, ok := seedInput(line, p.Task.Labels)
				if !ok {
					rec.Dropped[dropNotInput]++
					continue
				}
				ex := task.Example{ID: fmt.Sprintf("teacher/%d", rec.Written), Text: line, Label: g.label}
				if p.Task.Type == task.Generation {
					in, out, ok := strings.Cut(line, seedPairSep)
					if !ok || strings.TrimSpace(in) == "" || strings.TrimSpace(out) == "" {
						rec.Dropped["not an input "+seedPairSep+" answer pair"]++
						continue
					}
					ex.Text, ex.Output, ex.Label = strings.TrimSpace(in), strings.TrimSpace(out), ""
				}
				key := norm(ex.Text)
				switch {
				case key == "":
					rec.Dropped[dropEmpty]++
				case tested[key]:
					rec.Dropped[dropContaminated]++
				case seen[key]:
					rec.Dropped[dropDuplicate]++
				default:
					seen[key] = true
					written = append(written, ex)
				}
			}
		}
	}
	// Triage in two passes. First against the data the teacher did not write (the
	// catalog's and the user's examples): whether a line is empty, injection or
	// gibberish, so that a phrase of the teacher's own lines is never "ordinary" for
	// them. Then against everything that is left, the teacher's lines too (a pool of the
	// teacher's alone still has its off-domain lines and contradicted labels judged).
	own := all
	first := triage.New(t, own)
	var rest []task.Example
	for _, ex := range written {
		if v := first.Triage(triage.Answered(t, ex)); v.Class == triage.Poison &&
			(v.Kind == triage.PoisonEmpty || v.Kind == triage.PoisonInjection || v.Kind == triage.PoisonGibberish) {
			rec.Dropped[dropSeedPoison+": "+string(v.Kind)]++
			continue
		}
		rest = append(rest, ex)
	}
	second := triage.New(t, append(own, rest...))
	for _, ex := range rest {
		if v := second.Triage(triage.Answered(t, ex)); v.Class == triage.Poison {
			rec.Dropped[dropSeedPoison+": "+string(v.Kind)]++
			continue
		}
		pool.Examples = append(pool.Examples, ex)
		pool.From["teacher"]++
		rec.Kept++
		rec.KeptPerLabel[ex.Label]++ // generation: under the empty label
	}
	return rec, nil
}

// seedInput is a teacher's line as an input: without a field name copied from the
// prompt's layout ("Example: ", "Input: ") or quotes around it. A heading (a few words
// ending in a colon: "Output:", "Correct answer:") or an answer's name alone (a label,
// quoted or not) is no input: ok is false.
func seedInput(line string, labels []string) (_ string, ok bool) {
	for _, field := range []string{"example", "input", "text", "question", "message"} {
		if len(line) > len(field)+1 && strings.EqualFold(line[:len(field)], field) && line[len(field)] == ':' {
			line = strings.TrimSpace(line[len(field)+1:])
			break
		}
	}
	if len(line) >= 2 && strings.ContainsRune(`"'`+"`", rune(line[0])) && line[len(line)-1] == line[0] {
		line = strings.TrimSpace(line[1 : len(line)-1])
	}
	words := strings.Fields(line)
	if len(words) == 0 || len(words) <= 4 && strings.HasSuffix(line, ":") {
		return "", false
	}
	for _, l := range labels {
		if norm(line) == norm(l) {
			return "", false
		}
	}
	return line, true
}

// seedPrompt asks for n examples of a goal.
func seedPrompt(p *Plan, g seedGoal, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Task: %s\n", p.Task.Description)
	if p.Task.Type == task.Generation {
		fmt.Fprintf(&b, "Write %d different, realistic examples of this task, one per line, each as: input %s answer\n", n, seedPairSep)
		for _, ex := range g.shown {
			fmt.Fprintf(&b, "Example: %s %s %s\n", oneLine(ex.Text), seedPairSep, oneLine(ex.Output))
		}
	} else {
		fmt.Fprintf(&b, "The answers are: %s.\nWrite %d different, realistic inputs for this task whose correct answer is %q. Vary their wording and length.\n",
			strings.Join(p.Task.Labels, ", "), n, g.label)
		for _, ex := range g.shown {
			fmt.Fprintf(&b, "Example: %s\n", oneLine(ex.Text))
		}
	}
	b.WriteString("One per line, no numbering, nothing else.")
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
