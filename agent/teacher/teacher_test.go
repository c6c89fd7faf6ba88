package teacher

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
