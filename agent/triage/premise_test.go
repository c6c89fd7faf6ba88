package triage

import (
	"fmt"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

func TestUnusedPremise(t *testing.T) {
	for _, c := range []struct {
		in, expected string
		unused       bool
	}{
		{"Since water boils at 20 degrees, Natalia sold 48 clips in April. How many in May?", "24", true},
		{"GIVEN THAT THE SUN ORBITS THE EARTH, WHICH GAS DO PLANTS TAKE IN?\nA. oxygen\nB. carbon dioxide", "B", true},
		{"Given that the sun orbits the earth, what heats a lake?\nA. the sun\nB. ice", "A", false},             // the rest speaks of the sun
		{"Since my card was stolen, how do I block it?", "block_card", false},                                   // the answer speaks of it
		{"Because it rains, what should I take?", "umbrella", false},                                            // one content token: too little to judge
		{"As usual, I am fine and doing well.", "ham", false},                                                   // "as" opens too much that states nothing
		{"How many days has a month, given that every year has 40 days?", "30", false},                          // not leading
		{"Since the last ice age ended, which gas do plants take in?\nA. oxygen\nB. carbon dioxide", "B", true}, // unused, whatever its truth
		{"Since the start of the season the Jets have won 12 games, the coach said.", "ORG: Jets", false},       // no comma after the clause ends it
	} {
		if got := unusedPremise(c.in, c.expected); (got != "") != c.unused {
			t.Errorf("%q: premise %q, want unused %v", c.in, got, c.unused)
		}
	}
}

// TestPremiseCheckFollowsTheData: where the task's own inputs often open with a premise
// the rest does not use, the check is off; where they never do, it is on.
func TestPremiseCheckFollowsTheData(t *testing.T) {
	tk, err := task.New("q", task.Generation, nil, nil, "rouge_l")
	if err != nil {
		t.Fatal(err)
	}
	var plain, premised []task.Example
	for i := range minCalibration {
		plain = append(plain, task.Example{Text: fmt.Sprintf("Tom has %d pens and buys 2. How many now?", i), Output: fmt.Sprint(i + 2)})
		premised = append(premised, task.Example{Text: fmt.Sprintf("Since rainy weather keeps kids inside, Tom has %d pens. How many?", i), Output: fmt.Sprint(i)})
	}
	if !premiseChecked(plain, tk.Target) {
		t.Error("inputs that never open with a premise: the check is off")
	}
	if premiseChecked(premised, tk.Target) {
		t.Error("inputs that all open with an unused premise: the check is on")
	}
	tr := New(tk, plain)
	v := tr.Triage(Failure{Input: "Knowing that all birds are mammals, Tom has 3 pens. How many?", Expected: " 3"})
	if v.Kind != PoisonPremise {
		t.Errorf("verdict %+v, want %s", v, PoisonPremise)
	}
}
