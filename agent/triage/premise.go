package triage

import (
	"regexp"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// PoisonPremise: the input opens with a premise ("Given that ..., ", "Since ..., ") that
// nothing after it, and nothing in the answer, speaks of: a claim slipped in front of the
// question (a false one, often: "Since water boils at 20 degrees, Natalia sold ..."),
// which a model trained on the line learns to take as given.
const PoisonPremise Kind = "unused_premise"

// premiseRe is a leading premise clause: a subordinator that states a premise, the clause
// (up to its first comma, at most 120 characters), and the rest of the input. Not a bare
// "as": it opens far more that states nothing ("As usual", "As with many commodities",
// "As an example of ..."; four of the five genuine inputs that AdaptFT-Bench's seed-1
// audit took for a premise with it).
var premiseRe = regexp.MustCompile(`(?is)^\s*(given that|since|because|knowing that|assuming(?: that)?|considering that|now that|seeing that)\s+([^,\n]{3,120}),\s*(\S.*)$`)

// unusedPremise returns a leading premise clause of in that shares no content token
// (numbers, words of three letters or more other than function words, compared by their
// first five letters) with the rest of the input or with the expected answer; "" when in
// has none, or the premise is spoken of (or has fewer than two content tokens).
func unusedPremise(in, expected string) string {
	m := premiseRe.FindStringSubmatch(in)
	if m == nil {
		return ""
	}
	claim := contentTokens(m[2])
	if len(claim) < 2 {
		return ""
	}
	used := map[string]bool{}
	for _, w := range append(contentTokens(m[3]), contentTokens(expected)...) {
		used[stem(w)] = true
	}
	for _, w := range claim {
		if used[stem(w)] {
			return ""
		}
	}
	return strings.TrimSpace(m[1] + " " + m[2])
}

// unusedPremise is the package function where the task's data leave the check on
// (Triager.premises), "" otherwise.
func (tr *Triager) unusedPremise(in, expected string) string {
	if !tr.premises {
		return ""
	}
	return unusedPremise(in, expected)
}

// stem is a token's first five letters ("boiling" and "boils" differ, "degrees" and
// "degree" do not).
func stem(w string) string {
	if len(w) > 5 {
		return w[:5]
	}
	return strings.TrimSuffix(w, "s")
}

// premiseChecked says whether the task's labelled inputs leave the check its use: at most
// ownInputsQuantile of them (over at least minCalibration) open with an unused premise.
// In a task whose inputs often do, such a clause is the task's way of writing, not a claim
// slipped in; with fewer labelled inputs the check runs (no measure says otherwise).
func premiseChecked(pool []task.Example, expected func(task.Example) string) bool {
	if len(pool) < minCalibration {
		return true
	}
	n := 0
	for _, ex := range pool {
		if unusedPremise(ex.Text, expected(ex)) != "" {
			n++
		}
	}
	return float64(n) <= ownInputsQuantile*float64(len(pool))
}
