package settings

import "testing"

func TestFirstDifference(t *testing.T) {
	for _, c := range []struct {
		was, now map[string]string
		key      string
		found    bool
	}{
		{map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "2", "a": "1"}, "", false},
		{nil, nil, "", false},
		{map[string]string{"a": "1", "c": "3"}, map[string]string{"a": "1", "c": "4"}, "c", true},
		{map[string]string{"b": "2"}, map[string]string{"a": "1", "b": "2"}, "a", true}, // only now has a
		{map[string]string{"a": "1", "z": "9"}, map[string]string{"z": "9"}, "a", true}, // only was has a
		{map[string]string{"a": "", "b": "1"}, map[string]string{"b": "2"}, "a", true},  // empty is not absent
		{map[string]string{"x": "1", "y": "1"}, map[string]string{"x": "2", "y": "2"}, "x", true},
	} {
		d, found := FirstDifference(c.was, c.now)
		if d.Key != c.key || found != c.found {
			t.Errorf("FirstDifference(%v, %v) = %q, %v; want %q, %v", c.was, c.now, d.Key, found, c.key, c.found)
		}
		if found && (d.Was != c.was[d.Key] || d.Now != c.now[d.Key]) {
			t.Errorf("FirstDifference(%v, %v): values %q, %q", c.was, c.now, d.Was, d.Now)
		}
	}
}
