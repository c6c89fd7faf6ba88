// Package teacher is the client of a teacher model: any OpenAI-compatible
// chat-completions endpoint (a hosted model, or a server speaking the same API, such as
// `pioneer serve`) that writes extra training examples. What it writes is data like any
// logged line: the caller triages it before use. Whatever it is sent is redacted first
// (internal/redact: e-mail addresses, card and phone numbers, and the user's patterns):
// production logs hold customers' words, and a teacher is often someone else's server.
package teacher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/internal/redact"
)

// Client talks to one endpoint and model.
type Client struct {
	URL    string // base URL, e.g. https://api.openai.com/v1
	Model  string
	APIKey string       // sent as a bearer token when set
	HTTP   *http.Client // nil: a client with a 60 s timeout
	// Retries is how many times a request that failed for a reason that may pass is
	// tried again (0: 3; negative: never), the first after Backoff (0: 0.5 s), each
	// next after twice the wait before.
	Retries int
	Backoff time.Duration
	// Redactor takes personal data out of every prompt before it is sent; nil: the
	// built-in rules. It cannot be switched off.
	Redactor *redact.Redactor

	mu       sync.Mutex
	redacted redact.Counts
}

// Redacted is how many matches of each kind were taken out of what was sent so far
// (kinds and numbers only, never the values).
func (c *Client) Redacted() redact.Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := redact.Counts{}
	out.Add(c.redacted)
	return out
}

var builtin, _ = redact.New(nil)

// maxResponse bounds what is read of a response.
const maxResponse = 1 << 20

// Complete sends one user message and returns the first choice's reply. A request that
// fails for a reason that may pass (the endpoint unreachable or timing out, 429, a 5xx)
// is tried again after a growing wait, Retries times; a refusal (another 4xx) or a reply
// that is not a chat completion is returned at once.
func (c *Client) Complete(ctx context.Context, prompt string, temperature float64) (string, error) {
	r := c.Redactor
	if r == nil {
		r = builtin
	}
	prompt, n := r.Redact(prompt)
	c.mu.Lock()
	if c.redacted == nil {
		c.redacted = redact.Counts{}
	}
	c.redacted.Add(n)
	c.mu.Unlock()
	body, err := json.Marshal(map[string]any{"model": c.Model, "temperature": temperature,
		"messages": []map[string]string{{"role": "user", "content": prompt}}})
	if err != nil {
		return "", fmt.Errorf("teacher: %w", err)
	}
	retries, wait := c.Retries, c.Backoff
	if retries == 0 {
		retries = 3
	}
	if wait == 0 {
		wait = 500 * time.Millisecond
	}
	for try := 0; ; try++ {
		reply, transient, err := c.post(ctx, body)
		if err == nil || !transient || try >= retries {
			if err != nil && try > 0 {
				err = fmt.Errorf("%w (after %d tries)", err, try+1)
			}
			return reply, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("teacher: %w (after %d tries; last: %v)", ctx.Err(), try+1, err)
		case <-time.After(wait << try):
		}
	}
}

// post makes one request; transient says whether trying again may help.
func (c *Client) post(ctx context.Context, body []byte) (reply string, transient bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("teacher: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", ctx.Err() == nil, fmt.Errorf("teacher: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return "", true, fmt.Errorf("teacher: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return "", transient, fmt.Errorf("teacher: %s: %.300s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) == 0 {
		return "", false, fmt.Errorf("teacher: unexpected response: %.200s", b)
	}
	return out.Choices[0].Message.Content, false, nil
}

// Lines are a reply's non-empty lines with numbering and bullets taken off, at most n.
func Lines(reply string, n int) []string {
	var out []string
	for _, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(line, "-*0123456789.) "))
		if line != "" && len(out) < n {
			out = append(out, line)
		}
	}
	return out
}

// Paraphrases asks for n ways a user might phrase text with the same meaning (labelled
// label) and returns the lines of the reply, numbering and bullets taken off, at most n.
func (c *Client) Paraphrases(ctx context.Context, text, label string, n int) ([]string, error) {
	prompt := fmt.Sprintf("Write %d different ways a user might phrase the following request, keeping its meaning "+
		"(intent %q). One per line, no numbering, nothing else.\n\n%s", n, label, text)
	reply, err := c.Complete(ctx, prompt, 0.7)
	if err != nil {
		return nil, err
	}
	return Lines(reply, n), nil
}
