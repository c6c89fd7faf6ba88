package coldstart_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
)

// plannerServer answers every chat completion with reply (status 200), or with status
// when it is not 200; it keeps the last prompt and counts the requests.
func plannerServer(t *testing.T, status int, reply string) (*teacher.Client, *string, *atomic.Int32) {
	var prompt string
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct{ Messages []struct{ Content string } }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		prompt = req.Messages[0].Content
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{"content": reply}}}})
	}))
	t.Cleanup(srv.Close)
	return &teacher.Client{URL: srv.URL + "/v1", Model: "planner", Backoff: time.Millisecond}, &prompt, &calls
}

// TestPlannerEndpoint: a planner's valid proposal (in a code fence) decides the type and
// labels, and the catalog's data are found for them; the prompt shows the description,
// the user's examples and the catalog's datasets.
func TestPlannerEndpoint(t *testing.T) {
	cat := smallCatalog(t)
	pl, prompt, _ := plannerServer(t, http.StatusOK, "Here is the task:\n```json\n"+
		`{"type": "classification", "labels": ["spam", "ham"], "metric": "accuracy", "reason": "messages are spam or not"}`+"\n```")
	ex := []task.Example{{Text: "WIN a free cruise now", Label: "spam"}}
	p, err := coldstart.PlanWith(context.Background(), pl, "sort incoming text messages", ex, cat)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Classification || strings.Join(p.Task.Labels, ",") != "spam,ham" || strings.Join(sources(p), ",") != "sms" {
		t.Fatalf("plan %+v, sources %v, reasons %q", p.Task, sources(p), p.Reasons)
	}
	if !strings.HasPrefix(p.Reasons[0], "planner: type classification") || !strings.Contains(p.Reasons[0], "spam or not") {
		t.Fatalf("the reasons do not say the planner decided: %q", p.Reasons)
	}
	for _, want := range []string{"sort incoming text messages", "WIN a free cruise now", "Dataset sms (classification)"} {
		if !strings.Contains(*prompt, want) {
			t.Errorf("the planner's prompt lacks %q:\n%s", want, *prompt)
		}
	}

	// An extraction proposal: the types are the planner's, the news data found for them.
	pl, _, _ = plannerServer(t, http.StatusOK, `{"type": "extraction", "entity_types": ["PER", "LOC"]}`)
	p, err = coldstart.PlanWith(context.Background(), pl, "find who went where in news sentences", nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Extraction || strings.Join(p.Task.EntityTypes, ",") != "PER,LOC" || p.Task.Metric != "entity_f1" || strings.Join(sources(p), ",") != "news" {
		t.Fatalf("extraction plan %+v, sources %v", p.Task, sources(p))
	}
}

// TestPlannerEndpointFallsBack: a planner that is down (after its retries), answers
// prose, proposes an invalid task or a metric of another type: the built-in planner
// plans, and the first reason says why the endpoint's plan was not used.
func TestPlannerEndpointFallsBack(t *testing.T) {
	cat := smallCatalog(t)
	desc := "classify text messages as spam or not"
	want, err := coldstart.PlanTask(desc, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, reply string
		status      int
		why         string
	}{
		{"down", "", http.StatusServiceUnavailable, "503"},
		{"prose", "I think this is a spam filter.", http.StatusOK, "no JSON object"},
		{"unknown field", `{"type": "classification", "labels": ["a", "b"], "dataset": "x"}`, http.StatusOK, "unknown field"},
		{"one label", `{"type": "classification", "labels": ["spam"]}`, http.StatusOK, "1 labels"},
		{"repeated label", `{"type": "classification", "labels": ["spam", "Spam"]}`, http.StatusOK, "twice"},
		{"bad type", `{"type": "regression"}`, http.StatusOK, "is not classification"},
		{"metric of another type", `{"type": "classification", "labels": ["spam", "not spam"], "metric": "rouge_l"}`, http.StatusOK, "rouge_l"},
	} {
		pl, _, calls := plannerServer(t, c.status, c.reply)
		p, err := coldstart.PlanWith(context.Background(), pl, desc, nil, cat)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.Task.Type != want.Task.Type || strings.Join(p.Task.Labels, ",") != strings.Join(want.Task.Labels, ",") || p.Task.Metric != want.Task.Metric {
			t.Errorf("%s: plan %+v, want the built-in planner's %+v", c.name, p.Task, want.Task)
		}
		if !strings.Contains(p.Reasons[0], "not used") || !strings.Contains(p.Reasons[0], c.why) || !strings.Contains(p.Reasons[1], want.Reasons[0]) {
			t.Errorf("%s: reasons %q, want first why the planner was not used (%q)", c.name, p.Reasons, c.why)
		}
		if c.status != http.StatusOK && calls.Load() != 4 {
			t.Errorf("%s: %d requests, want 4 (3 retries)", c.name, calls.Load())
		}
	}
}
