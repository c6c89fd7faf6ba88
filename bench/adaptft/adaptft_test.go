package main

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/agent/task"
)

func synthetic(kind string, n int) *scenario {
	sc := &scenario{name: "syn", kind: kind, labels: []string{"a", "b", "c"}}
	for i := range n {
		ex := task.Example{ID: fmt.Sprint(i), Text: fmt.Sprintf("Where is the money that my bank account %d was sent today, please?", i)}
		switch kind {
		case kindLabel, kindChoice:
			ex.Label = sc.labels[i%3]
		case kindEntities:
			ex.Entities = []task.Entity{{Type: "a", Text: "bank"}}
		default:
			ex.Output = fmt.Sprintf("It was sent on day %d.\n#### %d", i, i+40)
		}
		sc.pool = append(sc.pool, ex)
	}
	return sc
}

// TestPerturbationsDoWhatTheySay: each fixable one changes the input only, each poison
// one the input or the answer as its name says.
func TestPerturbationsDoWhatTheySay(t *testing.T) {
	for _, kind := range []string{kindLabel, kindChoice, kindEntities, kindAnswer} {
		sc := synthetic(kind, 10)
		for _, p := range append(append([]perturbation(nil), fixable...), poison...) {
			if !p.fits(kind) {
				continue
			}
			for seed := range uint64(5) {
				r := rand.New(rand.NewPCG(seed, 1))
				ex := sc.pool[int(seed)]
				ex.Entities = append([]task.Entity(nil), ex.Entities...)
				orig := sc.pool[int(seed)]
				if !p.apply(r, &ex, sc) {
					t.Fatalf("%s on %s: did not apply to %q", p.name, kind, orig.Text)
				}
				sameAnswer := ex.Label == orig.Label && ex.Output == orig.Output && task.FormatEntities(ex.Entities) == task.FormatEntities(orig.Entities)
				switch {
				case !p.poison && (!sameAnswer || ex.Text == orig.Text):
					t.Fatalf("fixable %s on %s: %+v from %+v", p.name, kind, ex, orig)
				case p.name == "wrong_answer" || p.name == "number_swap":
					if sameAnswer || ex.Text != orig.Text {
						t.Fatalf("%s on %s must change the answer only: %+v", p.name, kind, ex)
					}
				case p.poison && (!sameAnswer || ex.Text == orig.Text):
					t.Fatalf("%s on %s must change the input only: %+v", p.name, kind, ex)
				}
				check(t, p.name, orig, ex)
			}
		}
	}
}

// check looks at what a perturbation's name promises.
func check(t *testing.T, name string, orig, ex task.Example) {
	t.Helper()
	switch name {
	case "typo", "misspelling":
		if d := utf8.RuneCountInString(ex.Text) - utf8.RuneCountInString(orig.Text); d < -1 || d > 1 {
			t.Fatalf("%s changed the length by %d: %q", name, d, ex.Text)
		}
	case "casing":
		if !strings.EqualFold(ex.Text, orig.Text) {
			t.Fatalf("casing changed letters: %q", ex.Text)
		}
	case "truncation":
		if !strings.HasPrefix(orig.Text, ex.Text) {
			t.Fatalf("truncation is not a prefix: %q", ex.Text)
		}
	case "preamble", "jailbreak", "false_premise":
		if !strings.HasSuffix(strings.ToLower(ex.Text), strings.ToLower(orig.Text[1:])) {
			t.Fatalf("%s did not keep the input after it: %q", name, ex.Text)
		}
	case "prompt_injection":
		if !strings.HasPrefix(ex.Text, orig.Text) {
			t.Fatalf("injection did not keep the input before it: %q", ex.Text)
		}
	case "negation_flip":
		if !strings.Contains(ex.Text, "not") {
			t.Fatalf("no negation: %q", ex.Text)
		}
	case "gibberish":
		if !regexp.MustCompile(`^[a-z]+( [a-z]+)+$`).MatchString(ex.Text) {
			t.Fatalf("gibberish %q", ex.Text)
		}
	case "empty":
		if ex.Text != "" {
			t.Fatalf("empty %q", ex.Text)
		}
	}
}

// TestGenerateStages: four stages of fresh examples, 70/30 seen and test, poison at the
// stage's rate on seen lines only, fixable noise near 30 %, the same files for a seed.
func TestGenerateStages(t *testing.T) {
	sc := synthetic(kindAnswer, 2400)
	stages, reserve := generate(sc, 1)
	if len(stages) != 4 {
		t.Fatalf("%d stages", len(stages))
	}
	used := map[string]bool{}
	fix, total := 0, 0
	for s, st := range stages {
		seen, poisoned := 0, 0
		for _, l := range st {
			if used[l.Source] {
				t.Fatalf("pool example %s used twice", l.Source)
			}
			used[l.Source] = true
			total++
			if len(l.Fixable) > 0 {
				fix++
			}
			if l.Seen {
				seen++
			}
			if l.Poison != "" {
				if !l.Seen {
					t.Fatalf("a test line was poisoned: %+v", l)
				}
				poisoned++
			}
		}
		if len(st) != 500 || seen != 350 || poisoned != int(350*poisonRates[s]+0.5) {
			t.Fatalf("stage %d: %d lines, %d seen, %d poisoned", s, len(st), seen, poisoned)
		}
	}
	if share := float64(fix) / float64(total); share < 0.25 || share > 0.35 {
		t.Fatalf("fixable noise on %.2f of lines", share)
	}
	for _, ex := range reserve {
		if used[ex.ID] {
			t.Fatalf("pool example %s is both in a stage and in the reserve", ex.ID)
		}
		used[ex.ID] = true
	}
	if len(used) != len(sc.pool) {
		t.Fatalf("stages and reserve hold %d of the pool's %d examples", len(used), len(sc.pool))
	}
	again, _ := generate(sc, 1)
	for s := range stages {
		for i := range stages[s] {
			if stages[s][i].Example.Text != again[s][i].Example.Text || stages[s][i].Poison != again[s][i].Poison {
				t.Fatal("the same seed drew other lines")
			}
		}
	}
	// A pool too small for four stages of 500 and the reserve: a quarter of what the
	// reserve leaves each.
	small := synthetic(kindLabel, 1100)
	small.parent = 100
	if st, res := generate(small, 2); len(st[0]) != 175 || len(res) != 400 {
		t.Fatalf("small pool: %d lines per stage, reserve %d", len(st[0]), len(res))
	}
}
