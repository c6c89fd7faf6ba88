package production

import (
	"math"
	"strings"
	"testing"
)

func TestStandardError(t *testing.T) {
	for _, c := range []struct {
		p    float64
		n    int
		want float64
	}{
		{0.5, 100, math.Sqrt(0.5 * 0.5 / 100)},            // (50+1)/102 = 0.5
		{1, 200, math.Sqrt(201.0 / 202 * (1.0 / 202) / 200)}, // a perfect score still has noise
		{0, 200, math.Sqrt(201.0 / 202 * (1.0 / 202) / 200)},
		{0.9, 0, 0},
	} {
		if got := standardError(c.p, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("standardError(%v, %d) = %v, want %v", c.p, c.n, got, c.want)
		}
	}
}

func TestRefitGate(t *testing.T) {
	deployed := Scores{Validation: 0.90, Previous: 0.90}
	winner := Scores{Validation: 1, Previous: 1}
	// On 200 validation examples a perfect winner's difference error is √2·0.00496 ≈
	// 0.0070: one example lost (0.995) is noise, two (0.990) are not.
	for _, c := range []struct {
		name   string
		refit  Scores
		pass   bool
		reason string
	}{
		{"equal", Scores{Validation: 1, Previous: 1}, true, ""},
		{"one example lower on V", Scores{Validation: 0.995, Previous: 0.995}, true, ""},
		{"two examples lower on V", Scores{Validation: 0.990, Previous: 0.99}, false, "below the winner's"},
		{"R broken beyond epsilon", Scores{Validation: 1, Previous: 1, Regressions: 3}, false, "3 examples of R"},
		{"R broken within epsilon", Scores{Validation: 1, Previous: 1, Regressions: 2}, true, ""},
		{"ratchet", Scores{Validation: 0.995, Previous: 0.895}, false, "ratchet"},
	} {
		pass, why := refitGate(c.refit, winner, deployed, 2, 200)
		if pass != c.pass || !strings.Contains(why, c.reason) {
			t.Errorf("%s: refitGate = %v %q, want %v (%q)", c.name, pass, why, c.pass, c.reason)
		}
	}
	// The tolerance grows with the winner's own noise: at 0.80 on 50 examples, 0.75 passes.
	if pass, why := refitGate(Scores{Validation: 0.75, Previous: 1}, Scores{Validation: 0.80}, deployed, 2, 50); !pass {
		t.Errorf("a refit within the noise of a 0.80 winner on 50 examples: %s", why)
	}
}
