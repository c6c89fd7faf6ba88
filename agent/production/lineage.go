package production

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Event is one line of the lineage log: a step the agent took, a dataset recipe, a
// candidate, a score or a verdict. Key identifies the step, so that a resumed run knows
// what it already did.
type Event struct {
	Seq  int             `json:"seq"`
	Time time.Time       `json:"time"`
	Key  string          `json:"key"`
	Step string          `json:"step"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Lineage is the append-only log of a run (RUN_DIR/lineage.jsonl). Every append is
// written and synced before it returns, so a crash loses at most the step in progress; a
// torn last line (a crash mid-write) is ignored on reading.
type Lineage struct {
	path   string
	f      *os.File
	events []Event
	byKey  map[string]int
}

// OpenLineage opens (or creates) a run's lineage log and reads what it holds.
func OpenLineage(path string) (*Lineage, error) {
	l := &Lineage{path: path, byKey: map[string]int{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	good := 0 // bytes of complete, valid lines
	for good < len(b) {
		end := bytes.IndexByte(b[good:], '\n')
		if end < 0 {
			break // a torn final line
		}
		var e Event
		if err := json.Unmarshal(b[good:good+end], &e); err != nil {
			break
		}
		l.byKey[e.Key] = len(l.events)
		l.events = append(l.events, e)
		good += end + 1
	}
	if good < len(b) { // drop what a crash left half-written, so appends start clean
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, fmt.Errorf("lineage %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

// Close closes the log file.
func (l *Lineage) Close() error { return l.f.Close() }

// Has reports whether a step with this key was recorded, and decodes its data into v
// (when v is not nil).
func (l *Lineage) Has(key string, v any) bool {
	i, ok := l.byKey[key]
	if !ok {
		return false
	}
	if v != nil && len(l.events[i].Data) > 0 {
		if err := json.Unmarshal(l.events[i].Data, v); err != nil {
			return false
		}
	}
	return true
}

// Events returns what the log holds, in order.
func (l *Lineage) Events() []Event { return l.events }

// Append records a step. A key already recorded is not written again (a resumed run
// re-deriving a step it had done).
func (l *Lineage) Append(key, step string, data any) error {
	if _, ok := l.byKey[key]; ok {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	e := Event{Seq: len(l.events) + 1, Time: time.Now().UTC(), Key: key, Step: step, Data: b}
	line, err := json.Marshal(e)
	if err != nil {
		return err
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
