package main

import "testing"

func TestLabelOutputReadsTheFramingOffTheCompletions(t *testing.T) {
	labels := []string{"time", "timezone", "w2"}
	for _, c := range []struct {
		name    string
		targets []string
		labels  []string
		want    string
	}{
		{"leading space, bare labels", []string{" time", " timezone", " w2"}, labels, " {label}"},
		{"leading space, spaced labels", []string{" time", " w2"}, []string{" time", " timezone", " w2"}, "{label}"},
		{"a label inside another: the framing all share", []string{" timezone", " time"}, labels, " {label}"},
		{"prefix and suffix", []string{"intent=w2.", "intent=time."}, labels, "intent={label}."},
		{"completions naming no label are passed over", []string{" w2", "???", " time"}, labels, " {label}"},
		{"nothing shared", []string{" w2", "time!"}, labels, "{label}"},
		{"no completions", nil, labels, "{label}"},
	} {
		if got := labelOutput(c.targets, c.labels); got != c.want {
			t.Errorf("%s: labelOutput = %q, want %q", c.name, got, c.want)
		}
	}
}
