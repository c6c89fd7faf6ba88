package production

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// TestConsolidatingCurriculum: without consolidation a failure is trained on only
// through a confirmed pattern of its own kind; with it (the curricula that replay R)
// every admitted training failure enters once, its logged form too, and a confirmed
// pattern still brings the probes the deployed model missed and its failures' similar
// examples (the missed probe not taken twice).
func TestConsolidatingCurriculum(t *testing.T) {
	tk, err := task.New("topics", task.Classification, []string{"travel", "weather", "food"}, nil, "accuracy")
	if err != nil {
		t.Fatal(err)
	}
	ex := func(id, s, label string) task.Example { return task.Example{ID: id, Text: s, Label: label} }
	gold := map[string]Item{
		"f1": {Example: ex("f1", "book me a flight to rome", "travel"), Source: SrcGold},
		"f2": {Example: ex("f2", "will it rain in oslo", "weather"), Source: SrcGold},
		"f3": {Example: ex("f3", "best pizza near me", "food"), Source: SrcGold},
	}
	variants := map[string]Item{"f3": {Example: ex("f3", "best pizzza near me", "food"), Source: SrcVariant}}
	pool := []task.Example{ex("p1", "book a flight to paris", "travel"), ex("p2", "a flight to rome please", "travel"),
		ex("p3", "is it sunny in oslo", "weather"), ex("p4", "pizza places near me", "food")}
	texts := make([]string, len(pool))
	for i, p := range pool {
		texts[i] = p.Text
	}
	patterns := []*Pattern{{ID: "travel->weather", Gold: "travel", Predicted: "weather", Failures: []string{"f1"}, Missed: []int{1}, Confirmed: true},
		{ID: "weather->food", Gold: "weather", Predicted: "food", Failures: []string{"f2"}, Missed: []int{2}}} // not confirmed
	build := func(consolidate bool) map[string]int {
		c := buildCurriculum(tk, patterns, gold, variants, pool, text.NewIndex(texts), func(int) bool { return true }, nil, 1, consolidate, 1)
		n := map[string]int{}
		for _, it := range c.Items {
			n[string(it.Source)+":"+it.Example.Text]++
		}
		return n
	}
	plain := build(false)
	if plain["gold_failure:book me a flight to rome"] != 1 || plain["gold_failure:will it rain in oslo"] != 0 || plain["gold_failure:best pizza near me"] != 0 {
		t.Fatalf("without consolidation, want only the confirmed pattern's failure: %v", plain)
	}
	if plain["missed_probe:a flight to rome please"] != 1 || plain["missed_probe:is it sunny in oslo"] != 0 {
		t.Fatalf("want the confirmed pattern's missed probe, once, and no other: %v", plain)
	}
	all := build(true)
	for _, k := range []string{"gold_failure:book me a flight to rome", "gold_failure:will it rain in oslo", "gold_failure:best pizza near me", "robustness:best pizzza near me"} {
		if all[k] != 1 {
			t.Errorf("consolidating curriculum has %s %d times, want once: %v", k, all[k], all)
		}
	}
	similar := 0
	for k, n := range all {
		if strings.HasPrefix(k, "similar:") {
			similar += n
		}
	}
	if similar != 1 {
		t.Errorf("%d similar examples, want 1 (for the confirmed pattern's one failure): %v", similar, all)
	}
}

// TestRegressionAwareReplay: a curriculum that replays R holds each example of R once,
// one more time for each earlier candidate that broke it (at most maxReplayCopies), and
// never the traffic triage called poison.
func TestRegressionAwareReplay(t *testing.T) {
	tk, err := task.New("topics", task.Classification, []string{"travel", "weather"}, nil, "accuracy")
	if err != nil {
		t.Fatal(err)
	}
	r := []task.Example{{ID: "r1", Text: "fly me to rome", Label: "travel"}, {ID: "r2", Text: "is it cold", Label: "weather"},
		{ID: "r3", Text: "snow tomorrow", Label: "weather"}, {ID: "r4", Text: "ignore the rules", Label: "travel"}}
	sp := &space{
		in:     &inputs{cfg: Config{Log: io.Discard}, t: tk, traffic: r},
		tg:     &triaged{gold: map[string]Item{}, variants: map[string]Item{}, usable: func(int) bool { return true }, trafficPoison: map[string]bool{"r4": true}},
		poolIx: text.NewIndex(nil),
		base:   baseline{R: r},
		broken: map[string]int{},
	}
	copies := func() map[string]int {
		n := map[string]int{}
		for _, it := range sp.curriculum(context.Background(), 0, 0, true, 1).Items {
			if it.Source == SrcTraffic {
				n[it.Example.ID]++
			}
		}
		return n
	}
	if got := copies(); got["r1"] != 1 || got["r2"] != 1 || got["r3"] != 1 || got["r4"] != 0 {
		t.Fatalf("before any candidate, R replayed %v, want r1..r3 once and the poison r4 never", got)
	}
	sp.noteScored(&candidate{Scores: Scores{Broken: []string{"r2", "r4"}}})
	sp.noteScored(&candidate{Scores: Scores{Broken: []string{"r2", "r3"}}})
	sp.noteScored(&candidate{Scores: Scores{Broken: []string{"r2"}}})
	if got := copies(); got["r1"] != 1 || got["r2"] != maxReplayCopies || got["r3"] != 2 || got["r4"] != 0 {
		t.Fatalf("after three candidates broke r2 and one r3, R replayed %v, want r1 1, r2 %d, r3 2, r4 0", got, maxReplayCopies)
	}
}
