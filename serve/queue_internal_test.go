package serve

import (
	"errors"
	"testing"
)

// TestFullQueueIsRefused: a job past the queue's bound is refused at once (the handler
// answers 429), not waited on.
func TestFullQueueIsRefused(t *testing.T) {
	s := &Server{jobs: make(chan *job, 2), metrics: newMetrics()}
	for i := range 2 {
		if err := s.submit(&job{}); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if err := s.submit(&job{}); !errors.Is(err, errQueueFull) {
		t.Fatalf("a third job in a queue of 2: %v", err)
	}
}

// TestHoldBack: a stream keeps back what may begin a stop string or end in half a
// character, and nothing else.
func TestHoldBack(t *testing.T) {
	for _, c := range []struct {
		text  string
		stops []string
		want  int
	}{
		{"hello wor", []string{"world"}, 3},
		{"hello", []string{"xyz"}, 0},
		{"hello \uFFFD", nil, 3},
		{"abcab", []string{"abd", "bc"}, 2},
	} {
		if got := holdBack(c.text, c.stops); got != c.want {
			t.Errorf("holdBack(%q, %q) = %d, want %d", c.text, c.stops, got, c.want)
		}
	}
	if s, ok := cut("one two three", []string{"three", "two"}); !ok || s != "one " {
		t.Errorf("cut: %q %v", s, ok)
	}
}
