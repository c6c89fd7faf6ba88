package coldstart

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// Pool is the labelled data the plan's sources give the task: every split but a test
// split, labels mapped onto the task's, duplicates and anything in a catalog test split
// left out.
type Pool struct {
	Examples []task.Example `json:"-"`
	// From counts the examples kept per source dataset; Dropped the ones left out, by
	// reason.
	From    map[string]int `json:"from"`
	Dropped map[string]int `json:"dropped"`
}

// Drop reasons.
const (
	dropUnmapped     = "label not mapped onto the task's"
	dropDuplicate    = "duplicate input (same answer)"
	dropConflict     = "duplicate input with another answer"
	dropContaminated = "input in a catalog test split"
	dropEmpty        = "no text or answer"
)

// norm is an input up to case, spacing and punctuation: what duplicates and
// contamination are judged on.
func norm(s string) string { return strings.Join(text.Words(s), " ") }

// Gather reads the plan's sources into the task's pool. Test splits are never read as
// data: every dataset's test split in the catalog is read only to leave its inputs out
// (contamination).
func Gather(p *Plan, cat *catalog.Catalog) (*Pool, error) {
	pool := &Pool{From: map[string]int{}, Dropped: map[string]int{}}
	tested, err := TestInputs(cat)
	if err != nil {
		return nil, err
	}
	byDir := map[string]*catalog.Dataset{}
	for _, d := range cat.Datasets {
		byDir[d.Dir] = d
	}
	seen := map[string]int{} // normalised input -> index in pool.Examples (-1: dropped as a conflict)
	for _, src := range p.Sources {
		d := byDir[src.Dir]
		if d == nil {
			return nil, fmt.Errorf("coldstart: source %s (%s) is not in the catalog", src.Dataset, src.Dir)
		}
		for _, split := range d.SplitNames() {
			if split == "test" {
				continue
			}
			exs, skipped, err := d.Examples(split)
			if err != nil {
				return nil, fmt.Errorf("coldstart: %s %s: %w", d.Name, split, err)
			}
			pool.Dropped[dropEmpty] += skipped
			for _, ex := range exs {
				ex, ok := p.MapExample(ex, src)
				if !ok {
					pool.Dropped[dropUnmapped]++
					continue
				}
				key := norm(ex.Text)
				if pool.dropped(key, ex, tested) {
					continue
				}
				if i, dup := seen[key]; dup {
					if i >= 0 && !sameAnswer(pool.Examples[i], ex) {
						pool.Examples[i].ID = "" // both go
						seen[key] = -1
						pool.Dropped[dropConflict] += 2
					} else if i >= 0 {
						pool.Dropped[dropDuplicate]++
					} else {
						pool.Dropped[dropConflict]++
					}
					continue
				}
				ex.ID = d.Name + "/" + ex.ID
				seen[key] = len(pool.Examples)
				pool.Examples = append(pool.Examples, ex)
			}
		}
	}
	kept := pool.Examples[:0]
	for _, ex := range pool.Examples {
		if ex.ID != "" {
			kept = append(kept, ex)
			pool.From[strings.SplitN(ex.ID, "/", 2)[0]]++
		}
	}
	pool.Examples = kept
	for k, v := range pool.Dropped {
		if v == 0 {
			delete(pool.Dropped, k)
		}
	}
	if len(pool.Examples) == 0 {
		return nil, fmt.Errorf("coldstart: the sources (%d) give no usable example for the task", len(p.Sources))
	}
	return pool, nil
}

// dropped reports whether an example (key its normalised input) cannot be in the pool,
// counting why: no input, or an input of a catalog test split (tested).
func (pool *Pool) dropped(key string, ex task.Example, tested map[string]bool) bool {
	switch {
	case key == "" || ex.Text == "":
		pool.Dropped[dropEmpty]++
	case tested[key]:
		pool.Dropped[dropContaminated]++
	default:
		return false
	}
	return true
}

// userSource names the user's own examples (--examples) in a pool.
const userSource = "examples"

// AddUser puts the user's examples into the pool: they are the task's own, labelled by
// the person who describes it, so one whose input a catalog example has too replaces
// that example (the user's answer wins). Left out, and counted: an empty one, one
// whose input is in a catalog test split (tested), and a classification example whose
// label is not the task's.
func (pool *Pool) AddUser(p *Plan, user []task.Example, tested map[string]bool) {
	at := map[string]int{}
	for i, ex := range pool.Examples {
		at[norm(ex.Text)] = i
	}
	labels := map[string]bool{}
	for _, l := range p.Task.Labels {
		labels[l] = true
	}
	for i, ex := range user {
		key := norm(ex.Text)
		if pool.dropped(key, ex, tested) {
			continue
		}
		if p.Task.Type == task.Classification && !p.MultipleChoice && !labels[ex.Label] {
			pool.Dropped[dropUnmapped]++
			continue
		}
		ex.ID = fmt.Sprintf("%s/%d", userSource, i+1)
		if j, ok := at[key]; ok {
			if src := strings.SplitN(pool.Examples[j].ID, "/", 2)[0]; src != userSource {
				pool.From[src]--
				pool.From[userSource]++
			} else {
				pool.Dropped[dropDuplicate]++
			}
			pool.Examples[j] = ex
			continue
		}
		at[key] = len(pool.Examples)
		pool.Examples = append(pool.Examples, ex)
		pool.From[userSource]++
	}
	for k, v := range pool.From {
		if v == 0 {
			delete(pool.From, k)
		}
	}
}

// TestInputs are the normalised inputs of every test split in the catalog: what no
// training or evaluation example may be (contamination).
func TestInputs(cat *catalog.Catalog) (map[string]bool, error) {
	tested := map[string]bool{}
	for _, d := range cat.Datasets {
		if _, ok := d.Splits["test"]; !ok {
			continue
		}
		exs, _, err := d.Examples("test")
		if err != nil {
			return nil, fmt.Errorf("coldstart: contamination check, %s test split: %w", d.Name, err)
		}
		for _, ex := range exs {
			tested[norm(ex.Text)] = true
		}
	}
	return tested, nil
}

// MapExample puts a source's example in the task's terms: its label mapped (ok false
// when the label has no task label), its entities of mapped types renamed and the others
// left out (a sentence with none left is a negative example).
func (p *Plan) MapExample(ex task.Example, src Source) (task.Example, bool) {
	switch p.Task.Type {
	case task.Classification:
		l, ok := src.Map[ex.Label]
		if !ok {
			return ex, false
		}
		ex.Label = l
	case task.Extraction:
		var keep []task.Entity
		for _, e := range ex.Entities {
			if t, ok := src.Map[e.Type]; ok {
				e.Type = t
				keep = append(keep, e)
			}
		}
		ex.Entities = keep
	case task.Generation:
		// A task's answer is one line (generation stops at the first newline) unless it
		// is a program: a worked answer's lines (GSM8K's steps) are joined by spaces.
		if !p.Task.MultiLine {
			ex.Output = strings.Join(strings.Fields(ex.Output), " ")
		}
	}
	return ex, true
}

// Bounds of a generated answer's budget in tokens.
const (
	minAnswerTokens = 64 // the task format's default
	maxAnswerTokens = 512
)

// answerBudget is the token budget of a generation task's answers: twice the 95th
// percentile of the training answers' words (a word is a token or two; four times for
// programs, whose words are runs of names and symbols), within [minAnswerTokens,
// maxAnswerTokens].
func answerBudget(exs []task.Example, program bool) int {
	per := 2
	if program {
		per = 4
	}
	var n []int
	for _, ex := range exs {
		n = append(n, len(strings.Fields(ex.Output)))
	}
	if len(n) == 0 {
		return minAnswerTokens
	}
	slices.Sort(n)
	return min(max(per*n[(len(n)-1)*95/100], minAnswerTokens), maxAnswerTokens)
}

func sameAnswer(a, b task.Example) bool {
	return a.Label == b.Label && a.Output == b.Output && slices.Equal(a.Entities, b.Entities)
}
