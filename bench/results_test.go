package bench

import (
	"strings"
	"testing"
)

func names(fs []Figure) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return strings.Join(out, ",")
}

func TestMergeKeepsUnmeasuredFigures(t *testing.T) {
	old := &Result{Benchmark: "models", Command: "go run ./bench/models -skip x", Commit: "abc", Date: "2026-12-01", Method: "first run."}
	for _, n := range []string{"a_zero", "a_lora10", "b_zero", "b_lora10"} {
		old.Add(n, "accuracy", 0.5, nil, "", true)
	}
	r := &Result{Benchmark: "models", Method: "second run."}
	r.Add("a_zero", "accuracy", 0.6, nil, "", true)
	r.Add("a_full10", "accuracy", 0.7, nil, "", true)
	r.Add("b_lora50", "accuracy", 0.8, nil, "", true)
	if err := r.Merge(old, "old.json"); err != nil {
		t.Fatal(err)
	}
	if got, want := names(r.Figures), "a_zero,a_full10,b_lora50,a_lora10,b_zero,b_lora10"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	if r.Figures[0].Pioneer != 0.6 || r.Figures[3].Pioneer != 0.5 {
		t.Fatalf("a_zero %g (want this run's 0.6), a_lora10 %g (want the earlier 0.5)", r.Figures[0].Pioneer, r.Figures[3].Pioneer)
	}
	for _, s := range []string{"old.json", "commit abc", "3 of its figures", "3 figures are this run's", "first run."} {
		if !strings.Contains(r.Method, s) {
			t.Errorf("method %q lacks %q", r.Method, s)
		}
	}
	if err := r.Merge(&Result{Benchmark: "nano"}, "nano.json"); err == nil {
		t.Error("merging another benchmark's result: no error")
	}
}
