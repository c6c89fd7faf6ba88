package production

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
)

// Teacher is an OpenAI-compatible chat-completions endpoint (a hosted model, or any
// server speaking the same API) that writes extra training examples: paraphrases of
// the gold failures, with the same answer. Its examples pass the same poison checks as
// logged ones before they are used.
type Teacher struct {
	URL    string // base URL, e.g. https://api.openai.com/v1
	Model  string
	APIKey string
	Client *http.Client // nil: 60 s timeout
}

func (tc *Teacher) complete(ctx context.Context, prompt string) (string, error) {
	body, _ := json.Marshal(map[string]any{"model": tc.Model, "temperature": 0.7,
		"messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(tc.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if tc.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+tc.APIKey)
	}
	client := tc.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("teacher: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("teacher: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) == 0 {
		return "", fmt.Errorf("teacher: unexpected response: %.200s", b)
	}
	return out.Choices[0].Message.Content, nil
}

// extend asks for n paraphrases of every gold failure (classification only: the
// paraphrase keeps the label) and adds those that pass triage.
func (tc *Teacher) extend(ctx context.Context, t *task.Task, tr *triager, c *Curriculum, n int) error {
	if n <= 0 || t.Type != task.Classification {
		return nil
	}
	var gold []Item
	for _, it := range c.Items {
		if it.Source == SrcGold {
			gold = append(gold, it)
		}
	}
	for _, g := range gold {
		prompt := fmt.Sprintf("Write %d different ways a user might phrase the following request, keeping its meaning "+
			"(intent %q). One per line, no numbering, nothing else.\n\n%s", n, g.Example.Label, g.Example.Text)
		text, err := tc.complete(ctx, prompt)
		if err != nil {
			return err
		}
		added := 0
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(strings.TrimLeft(line, "-*0123456789.) "))
			if line == "" || added >= n {
				continue
			}
			f := Failure{ID: g.Example.ID + "/teacher", Input: line, Label: g.Example.Label, Predicted: g.Example.Label, PredFormatOK: true}
			if v := tr.triage(f); v.Class == "poison" {
				continue
			}
			ex := g.Example
			ex.ID, ex.Text = fmt.Sprintf("%s/teacher-%d", g.Example.ID, added), line
			c.Items = append(c.Items, Item{Example: ex, Source: SrcTeacher, Pattern: g.Pattern})
			c.Mix[SrcTeacher]++
			added++
		}
	}
	return nil
}
