package teacher

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/internal/redact"
)

func TestParaphrases(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string
			Messages []struct{ Role, Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/chat/completions" ||
			r.Header.Get("Authorization") != "Bearer k" || req.Model != "m" || !strings.Contains(req.Messages[0].Content, "book a flight") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{
			"content": "1. get me a plane ticket\n- reserve a flight\n\n3) i need to fly to rome\nand one more"}}}})
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL + "/v1/", Model: "m", APIKey: "k"}
	got, err := c.Paraphrases(context.Background(), "book a flight", "book_flight", 3)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "get me a plane ticket|reserve a flight|i need to fly to rome" {
		t.Fatalf("%q", got)
	}
	c.APIKey = "wrong"
	if _, err := c.Paraphrases(context.Background(), "book a flight", "book_flight", 3); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a refused request: %v", err)
	}
}

// TestTeacherGetsRedactedPrompts: personal data never reaches the teacher, with the
// built-in rules or a user's; the client counts what it took out by kind.
func TestTeacherGetsRedactedPrompts(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Messages []struct{ Content string } }
		json.NewDecoder(r.Body).Decode(&req)
		seen = append(seen, req.Messages[0].Content)
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{"content": "ok"}}}})
	}))
	defer srv.Close()
	text := "refund card 4111 1111 1111 1111 to jane@example.com, account ACC-123456"
	c := &Client{URL: srv.URL + "/v1"}
	if _, err := c.Paraphrases(context.Background(), text, "refund", 2); err != nil {
		t.Fatal(err)
	}
	pats, _ := redact.ParsePatterns([]string{"account=ACC-[0-9]{6}"})
	r, err := redact.New(pats)
	if err != nil {
		t.Fatal(err)
	}
	c2 := &Client{URL: srv.URL + "/v1", Redactor: r}
	if _, err := c2.Complete(context.Background(), text, 0); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || strings.Contains(seen[0], "4111") || strings.Contains(seen[0], "jane@") || !strings.Contains(seen[0], "[CARD] to [EMAIL]") ||
		!strings.Contains(seen[0], "ACC-123456") || strings.Contains(seen[1], "ACC-123456") || !strings.Contains(seen[1], "[ACCOUNT]") {
		t.Fatalf("the teacher saw %q", seen)
	}
	if got := c.Redacted().String(); got != "card 1, email 1" {
		t.Fatalf("counted %s", got)
	}
	if got := c2.Redacted().String(); got != "account 1, card 1, email 1" {
		t.Fatalf("counted %s", got)
	}
}

// TestRetries: a 503 or 429 is tried again after a wait (and the reply that finally
// comes is returned); a refusal (400) is not; an endpoint that stays down fails after
// Retries more tries, saying how many.
func TestRetries(t *testing.T) {
	var calls int
	fail := 2
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls <= fail {
			http.Error(w, "busy", status)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{"content": "fine"}}}})
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL + "/v1", Backoff: time.Millisecond}
	if got, err := c.Complete(context.Background(), "hi", 0); err != nil || got != "fine" || calls != 3 {
		t.Fatalf("after two 503s: %q %v, %d calls", got, err, calls)
	}
	calls, status = 0, http.StatusTooManyRequests
	if got, err := c.Complete(context.Background(), "hi", 0); err != nil || got != "fine" || calls != 3 {
		t.Fatalf("after two 429s: %q %v, %d calls", got, err, calls)
	}
	calls, status = 0, http.StatusBadRequest
	if _, err := c.Complete(context.Background(), "hi", 0); err == nil || calls != 1 {
		t.Fatalf("a 400 is tried again: %v, %d calls", err, calls)
	}
	calls, fail, status = 0, 100, http.StatusBadGateway
	c.Retries = 2
	if _, err := c.Complete(context.Background(), "hi", 0); err == nil || calls != 3 || !strings.Contains(err.Error(), "after 3 tries") {
		t.Fatalf("an endpoint that stays down: %v, %d calls", err, calls)
	}
	calls, c.Retries = 0, -1
	if _, err := c.Complete(context.Background(), "hi", 0); err == nil || calls != 1 {
		t.Fatalf("Retries -1 tries again: %v, %d calls", err, calls)
	}
}
