package serve

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/internal/redact"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// redactRecord takes personal data out of what a traffic record stores.
func (s *Server) redactRecord(rec *trafficlog.Record) {
	if s.cfg.Redact == nil {
		return
	}
	n := redact.Counts{}
	red := func(text string) string {
		out, c := s.cfg.Redact.Redact(text)
		n.Add(c)
		return out
	}
	rec.Prompt, rec.Output = red(rec.Prompt), red(rec.Output)
	msgs := make([]chat.Message, len(rec.Messages))
	for i, m := range rec.Messages {
		m.Content = red(m.Content)
		msgs[i] = m
	}
	if len(msgs) > 0 {
		rec.Messages = msgs
	}
	if len(n) > 0 {
		rec.Redacted = n
	}
}

// trafficLog appends whole lines (one write each) to traffic.jsonl, synced to disk at
// most every 200 ms and on Close, and starts traffic-<n>.jsonl when the file passes
// rotate bytes: a crash loses at most the last 200 ms of lines and never leaves half a
// line in the middle of the file (a torn last line is one a reader skips).
type trafficLog struct {
	mu       sync.Mutex
	dir      string
	f        *os.File
	size     int64
	rotate   int64
	n        int
	dirty    bool
	stop     chan struct{}
	stopped  chan struct{}
	feedback *os.File
}

func openTrafficLog(dir string, rotate int64) (*trafficLog, error) {
	t := &trafficLog{dir: dir, rotate: rotate, stop: make(chan struct{}), stopped: make(chan struct{})}
	// The numbered files a previous run left: the next one continues after them.
	for {
		if _, err := os.Stat(filepath.Join(dir, trafficlog.RotatedName(t.n+1))); err != nil {
			break
		}
		t.n++
	}
	if err := t.open(); err != nil {
		return nil, err
	}
	fb, err := os.OpenFile(filepath.Join(dir, trafficlog.FeedbackFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.f.Close()
		return nil, err
	}
	t.feedback = fb
	go t.syncer()
	return t, nil
}

func (t *trafficLog) open() error {
	f, err := os.OpenFile(filepath.Join(t.dir, trafficlog.TrafficFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	t.f, t.size = f, st.Size()
	return nil
}

func (t *trafficLog) syncer() {
	defer close(t.stopped)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			t.mu.Lock()
			if t.dirty {
				t.f.Sync()
				t.feedback.Sync()
				t.dirty = false
			}
			t.mu.Unlock()
		case <-t.stop:
			return
		}
	}
}

// Append writes one record as a line.
func (t *trafficLog) Append(rec trafficlog.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size > 0 && t.size+int64(len(b)) > t.rotate {
		if err := t.f.Sync(); err != nil {
			return err
		}
		t.f.Close()
		t.n++
		if err := os.Rename(filepath.Join(t.dir, trafficlog.TrafficFile), filepath.Join(t.dir, trafficlog.RotatedName(t.n))); err != nil {
			return err
		}
		if err := t.open(); err != nil {
			return err
		}
	}
	n, err := t.f.Write(b)
	t.size += int64(n)
	t.dirty = true
	return err
}

func (t *trafficLog) appendFeedback(rec trafficlog.Feedback) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err = t.feedback.Write(append(b, '\n'))
	t.dirty = true
	return err
}

// Close syncs and closes the files.
func (t *trafficLog) Close() error {
	close(t.stop)
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if ferr := t.feedback.Sync(); err == nil {
		err = ferr
	}
	t.feedback.Close()
	return err
}

// feedback takes {"id", "verdict": "wrong"|"right", "expected"} for a logged answer.
func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	var fb trafficlog.Feedback
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	status := http.StatusOK
	defer func() { s.metrics.request(r.URL.Path, status) }()
	if err := dec.Decode(&fb); err != nil {
		status = http.StatusBadRequest
		apiError(w, status, "invalid_request_error", "feedback must be {\"id\", \"verdict\": \"wrong\"|\"right\", \"expected\"}: "+err.Error())
		return
	}
	switch {
	case fb.ID == "" || len(fb.ID) > 200 || strings.ContainsAny(fb.ID, "\n\r"):
		status = http.StatusBadRequest
	case fb.Verdict != "wrong" && fb.Verdict != "right":
		status = http.StatusBadRequest
	case fb.Verdict == "wrong" && strings.TrimSpace(fb.Expected) == "":
		status = http.StatusBadRequest
	}
	if status != http.StatusOK {
		apiError(w, status, "invalid_request_error", "feedback needs an id (the answer's), a verdict wrong or right, and the expected answer when wrong")
		return
	}
	if s.traffic == nil {
		status = http.StatusNotImplemented
		apiError(w, status, "invalid_request_error", "this server keeps no traffic log (start it with a log folder)")
		return
	}
	fb.Time = time.Now().UTC()
	if s.cfg.Redact != nil {
		fb.Expected, _ = s.cfg.Redact.Redact(fb.Expected)
	}
	if err := s.traffic.appendFeedback(fb); err != nil {
		status = http.StatusInternalServerError
		apiError(w, status, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": fb.ID, "recorded": true})
}
