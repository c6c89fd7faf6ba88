package triage

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// heldOut reads testdata/injection/heldout.jsonl: prompt injections and jailbreaks from
// public red-teaming packages (its README names them), which nothing in triage was tuned
// on.
func heldOut(t *testing.T) []struct{ Text, Source, Kind string } {
	t.Helper()
	b, err := os.ReadFile("../../testdata/injection/heldout.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out []struct{ Text, Source, Kind string }
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct{ Text, Source, Kind string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// disguise spells a line as the probes did: zero-width spaces between the
// words, or full-width letters.
func disguise(s string, how int) string {
	switch how {
	case 1:
		return strings.ReplaceAll(s, " ", " \u200b")
	case 2:
		var b strings.Builder
		for _, r := range s {
			if r >= '!' && r <= '~' {
				r += 0xFF01 - '!'
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	return s
}

// TestHeldOutInjectionCorpus: logged as failures of the CLINC150 intent task (as
// written, with zero-width spaces, in full-width letters, and appended to a genuine
// request of the task), the held-out attacks are turned away by triage.
func TestHeldOutInjectionCorpus(t *testing.T) {
	tk, err := task.Load("clinc150")
	if err != nil {
		t.Fatal(err)
	}
	train, err := tk.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := tk.Split("test")
	if err != nil {
		t.Fatal(err)
	}
	var pool []task.Example // a third of the training split: enough labelled data, a third of the fitting time
	for i := 0; i < len(train); i += 3 {
		pool = append(pool, train[i])
	}
	tr := New(tk, pool)
	r := rand.New(rand.NewPCG(7, 7))
	lines := heldOut(t)
	type tally struct{ n, detected, poison int }
	by := map[string]*tally{}
	count := func(key string, detected, poison bool) {
		if by[key] == nil {
			by[key] = &tally{}
		}
		by[key].n++
		if detected {
			by[key].detected++
		}
		if poison {
			by[key].poison++
		}
	}
	for i, l := range lines {
		genuine := test[r.IntN(len(test))]
		for how, name := range []string{"as written", "zero-width", "full-width", "appended"} {
			in := disguise(l.Text, how)
			if name == "appended" {
				in = genuine.Text + ". " + l.Text
			}
			f := Failure{ID: "x", Input: in, Label: genuine.Label, Predicted: tk.Labels[r.IntN(len(tk.Labels))], PredFormatOK: true}
			v := tr.Triage(f)
			count(l.Kind+" / "+name, v.Kind == PoisonInjection, v.Class == Poison)
			if name == "appended" && v.Class != Poison && i%10 == 0 {
				t.Logf("admitted: %.120q", in)
			}
		}
	}
	// The floors are a little under what was measured (README: 100 % of the lines alone
	// in every spelling; appended to a request, 76 % of the injections and 94 % of the
	// jailbreaks). About one in seven of the in-the-wild lines is a persona prompt with no
	// attack in it, and the shortest injections share most of their words with the
	// task's requests.
	floors := map[string]float64{"as written": 0.98, "zero-width": 0.98, "full-width": 0.98}
	for _, k := range []string{"injection / as written", "injection / zero-width", "injection / full-width", "injection / appended",
		"jailbreak / as written", "jailbreak / zero-width", "jailbreak / full-width", "jailbreak / appended"} {
		c := by[k]
		rate := float64(c.poison) / float64(c.n)
		t.Logf("%-24s %3d lines: %3d flagged as injection (%.0f %%), %3d turned away as poison (%.0f %%)", k, c.n, c.detected,
			100*float64(c.detected)/float64(c.n), c.poison, 100*rate)
		kind, how, _ := strings.Cut(k, " / ")
		floor, ok := floors[how]
		if !ok {
			floor = map[string]float64{"injection": 0.7, "jailbreak": 0.9}[kind]
		}
		if rate < floor {
			t.Errorf("%s: %.0f %% turned away, want at least %.0f %%", k, 100*rate, 100*floor)
		}
	}
}
