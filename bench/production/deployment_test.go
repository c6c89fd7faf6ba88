package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// TestFailureLog: the deployed model's mistakes become log lines in the failure-log
// format (ids prefixed, its output kept), the poisoned share of them with another label,
// and its right answers R.
func TestFailureLog(t *testing.T) {
	tk, err := task.New("t", task.Classification, []string{"a", "b", "c"}, nil, "accuracy")
	if err != nil {
		t.Fatal(err)
	}
	var traffic []task.Example
	res := &task.Result{}
	for i := range 10 {
		traffic = append(traffic, task.Example{ID: fmt.Sprint(i), Text: fmt.Sprintf("request %d", i), Label: "a"})
		res.Predictions = append(res.Predictions, task.Prediction{Output: map[bool]string{true: "a", false: "b"}[i%2 == 0], Correct: i%2 == 0})
	}
	log, planted, r := failureLog(tk, traffic, res, 0.4)
	if len(log) != 5 || len(r) != 5 || len(planted) != 2 {
		t.Fatalf("%d log lines, %d of R, %d poisoned", len(log), len(r), len(planted))
	}
	for _, l := range log {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(back["id"], "log-") || back["output"] != "b" || back["input"] != l.example.Text || len(back) != 4 {
			t.Fatalf("log line %s", b)
		}
		if poisoned := back["expected"] != "a"; poisoned != planted[l.ID] || l.example.Label != back["expected"] {
			t.Fatalf("log line %s: poisoned %v, example %+v", b, planted[l.ID], l.example)
		}
	}
}
