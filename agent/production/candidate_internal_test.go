package production

import (
	"strings"
	"testing"
)

// TestGate: a candidate passes only if it improves the held-out metric, breaks at most ε
// examples of R and does no worse on the previous version's evaluation set; a rejection
// names every rule it broke.
func TestGate(t *testing.T) {
	deployed := Scores{HeldOut: 0.80, Previous: 0.90}
	for _, c := range []struct {
		name string
		c    Scores
		pass bool
		why  []string
	}{
		{"better, ε kept", Scores{HeldOut: 0.85, Regressions: 2, Previous: 0.90}, true, nil},
		{"equal held-out", Scores{HeldOut: 0.80, Previous: 0.95}, false, []string{"does not improve"}},
		{"one regression too many", Scores{HeldOut: 0.95, Regressions: 3, Previous: 0.95}, false, []string{"3 examples of R became wrong (at most 2"}},
		{"ratchet", Scores{HeldOut: 0.85, Previous: 0.89}, false, []string{"ratchet"}},
		{"all three", Scores{HeldOut: 0.70, Regressions: 9, Previous: 0.50}, false, []string{"does not improve", "9 examples", "ratchet"}},
	} {
		pass, verdict := gate(c.c, deployed, 2)
		if pass != c.pass {
			t.Errorf("%s: pass %v (%s), want %v", c.name, pass, verdict, c.pass)
		}
		for _, w := range c.why {
			if !strings.Contains(verdict, w) {
				t.Errorf("%s: verdict %q does not say %q", c.name, verdict, w)
			}
		}
	}
}
