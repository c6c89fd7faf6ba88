package text

import "testing"

func TestOneEdit(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"baltimore", "baltimore", true},
		{"baltimore", "balitmore", true}, // swap
		{"mcrae", "mrae", true},          // deletion
		{"blanco", "blinco", true},       // any substitution
		{"sweden", "swedenn", true},      // insertion at the end
		{"cruces", "cruvces", true},      // insertion inside
		{"baltimore", "bltimroe", false}, // two edits
		{"sweden", "swden ", false},
		{"paris", "lyon", false},
		{"", "a", true},
		{"ab", "abcd", false},
	} {
		if got := OneEdit(c.a, c.b); got != c.want {
			t.Errorf("OneEdit(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := OneEdit(c.b, c.a); got != c.want {
			t.Errorf("OneEdit(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}
