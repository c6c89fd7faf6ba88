// Package lineage is the append-only log of an agent run (RUN_DIR/lineage.jsonl): every
// step the agent took, each dataset recipe, candidate, score and verdict, one JSON object
// per line. Each line is written and synced before Append returns, so a crash loses at
// most the step in progress, and a rerun of a killed command knows by the steps' keys
// what it already did.
//
// The log is never rewritten. On opening, only a torn last line (one without its final
// newline: a crash in the middle of a write) is repaired; a line that does not parse,
// sequence numbers out of order or a key recorded twice anywhere else is an error naming
// the line, and the file is left as it is. The log must not be a symbolic link.
package lineage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Event is one line of the log. Key identifies the step (a rerun appends nothing for a
// key already recorded); Step says what kind of step it is; Data is its record.
type Event struct {
	Seq  int             `json:"seq"` // 1, 2, ... in file order
	Time time.Time       `json:"time"`
	Key  string          `json:"key"`
	Step string          `json:"step"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Log is an open lineage log.
type Log struct {
	path   string
	f      *os.File
	events []Event
	byKey  map[string]int
}

// Open opens (or creates) a log and reads what it holds.
func Open(path string) (*Log, error) {
	l := &Log{path: path, byKey: map[string]int{}}
	b, err := fsutil.ReadState(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	good := 0 // bytes of complete, checked lines
	torn := false
	for n := 1; good < len(b); n++ {
		end := bytes.IndexByte(b[good:], '\n')
		last := end < 0
		if last {
			end = len(b) - good
		}
		e, err := l.check(b[good:good+end], n)
		if err != nil {
			if last {
				torn = true // a crash mid-write: the rest of the line never reached the disk
				break
			}
			return nil, err
		}
		l.byKey[e.Key] = len(l.events)
		l.events = append(l.events, e)
		good += end
		if !last {
			good++
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	l.f = f
	if err := l.repair(b, good, torn); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// check parses line n and checks it continues the log.
func (l *Log) check(line []byte, n int) (Event, error) {
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Errorf("lineage %s: line %d is not a lineage event (%v); the log is left as it is: mend or remove that line by hand", l.path, n, err)
	}
	switch {
	case e.Seq != n:
		return e, fmt.Errorf("lineage %s: line %d has sequence number %d; the log is left as it is", l.path, n, e.Seq)
	case e.Key == "" || e.Step == "":
		return e, fmt.Errorf("lineage %s: line %d has no key or step; the log is left as it is", l.path, n)
	}
	if i, dup := l.byKey[e.Key]; dup {
		return e, fmt.Errorf("lineage %s: line %d records key %q again (first on line %d); the log is left as it is", l.path, n, e.Key, i+1)
	}
	return e, nil
}

// repair makes the file end after its last good line: a torn line is cut off, a last line
// missing only its newline gets one. Appends then start on a fresh line.
func (l *Log) repair(b []byte, good int, torn bool) error {
	switch {
	case torn:
		if err := l.f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("lineage %s: cutting the torn last line: %w", l.path, err)
		}
	case good > 0 && b[good-1] != '\n':
		if _, err := l.f.WriteAt([]byte("\n"), int64(good)); err != nil {
			return fmt.Errorf("lineage %s: %w", l.path, err)
		}
		good++
	}
	if _, err := l.f.Seek(int64(good), 0); err != nil {
		return err
	}
	return l.f.Sync()
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Close closes the log file.
func (l *Log) Close() error { return l.f.Close() }

// Has reports whether a step with this key was recorded.
func (l *Log) Has(key string) bool {
	_, ok := l.byKey[key]
	return ok
}

// Get decodes the data of the step recorded under key into v (v may be nil) and reports
// whether there is one; data that does not decode into v is an error.
func (l *Log) Get(key string, v any) (bool, error) {
	i, ok := l.byKey[key]
	if !ok {
		return false, nil
	}
	if v != nil && len(l.events[i].Data) > 0 {
		if err := json.Unmarshal(l.events[i].Data, v); err != nil {
			return true, fmt.Errorf("lineage %s: line %d (%s): %w", l.path, i+1, key, err)
		}
	}
	return true, nil
}

// Events returns what the log holds, in order.
func (l *Log) Events() []Event { return l.events }

// Last is the last event of a kind of step, or nil.
func (l *Log) Last(step string) *Event {
	for i := len(l.events) - 1; i >= 0; i-- {
		if l.events[i].Step == step {
			return &l.events[i]
		}
	}
	return nil
}

// Append records a step. A key already recorded is not written again (a resumed run
// re-deriving a step it had done).
func (l *Log) Append(key, step string, data any) error {
	if _, ok := l.byKey[key]; ok {
		return nil
	}
	if key == "" || step == "" {
		return fmt.Errorf("lineage: an event needs a key and a step (got %q, %q)", key, step)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("lineage %s: %s: %w", l.path, key, err)
	}
	e := Event{Seq: len(l.events) + 1, Time: time.Now().UTC(), Key: key, Step: step, Data: b}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("lineage %s: %s: %w", l.path, key, err)
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("lineage %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("lineage %s: %w", l.path, err)
	}
	l.byKey[key] = len(l.events)
	l.events = append(l.events, e)
	return nil
}
