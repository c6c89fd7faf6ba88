// Package trafficlog is the format of what a server logs and production mode reads: the
// traffic (traffic.jsonl, rotated as traffic-N.jsonl: every request and answer) and the
// feedback on it (feedback.jsonl: a person's verdict on an answer), and their joining
// into a failure log and R, the traffic the deployed model gets right.
package trafficlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/internal/redact"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// Record is one request and its answer: a line of traffic.jsonl.
type Record struct {
	ID               string         `json:"id"`
	Time             time.Time      `json:"time"`
	Model            string         `json:"model"`
	Version          string         `json:"version,omitempty"` // the deployment's version that answered (deployment requests)
	Endpoint         string         `json:"endpoint"`
	Prompt           string         `json:"prompt"` // as the model saw it (chat: rendered)
	Messages         []chat.Message `json:"messages,omitempty"`
	Output           string         `json:"output"`
	Finish           string         `json:"finish_reason"`
	PromptTokens     int            `json:"prompt_tokens"`
	CompletionTokens int            `json:"completion_tokens"`
	QueueMS          int64          `json:"queue_ms"`
	TotalMS          int64          `json:"total_ms"`
	Redacted         redact.Counts  `json:"redacted,omitempty"` // matches taken out before storing, by kind
}

// Feedback is a person's verdict on a logged answer: a line of feedback.jsonl.
type Feedback struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Verdict  string    `json:"verdict"` // wrong or right
	Expected string    `json:"expected,omitempty"`
}

// File names in a log folder.
const (
	TrafficFile  = "traffic.jsonl"
	FeedbackFile = "feedback.jsonl"
)

// RotatedName is the n-th rotated traffic file's name.
func RotatedName(n int) string { return "traffic-" + strconv.Itoa(n) + ".jsonl" }

// readLines reads a JSONL file's whole lines (one that does not parse, such as a torn
// last line, is skipped; a missing file is empty).
func readLines[T any](path string) ([]T, error) {
	var out []T
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	err := jsonl.ReadFile(path, jsonl.DefaultMaxLine, func(l jsonl.Line) error {
		var v T
		if !l.TooLong && json.Unmarshal(l.Bytes, &v) == nil {
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// Labelled is a logged answer a person judged.
type Labelled struct {
	ID       string `json:"id"`
	Input    string `json:"input"` // the prompt as the model saw it
	Output   string `json:"output"`
	Expected string `json:"expected"`
	Version  string `json:"version,omitempty"`
}

// Label joins a log folder's traffic files (oldest first) with its feedback (the last
// verdict on an id wins): the answers marked wrong, with the expected answer, and those
// marked right (with their output as expected). With version set, only the answers of
// that deployment version count. Feedback on an id the traffic does not hold is counted
// in unknown.
func Label(dir, version string) (wrong, right []Labelled, unknown int, err error) {
	fbs, err := readLines[Feedback](filepath.Join(dir, FeedbackFile))
	if err != nil {
		return nil, nil, 0, err
	}
	verdict := map[string]Feedback{}
	for _, f := range fbs {
		verdict[f.ID] = f
	}
	rotated, err := filepath.Glob(filepath.Join(dir, "traffic-*.jsonl"))
	if err != nil {
		return nil, nil, 0, err
	}
	num := func(p string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "traffic-"), ".jsonl"))
		return n
	}
	sort.Slice(rotated, func(i, j int) bool { return num(rotated[i]) < num(rotated[j]) })
	files := append(rotated, filepath.Join(dir, TrafficFile))
	seen := map[string]bool{}
	for _, f := range files {
		recs, err := readLines[Record](f)
		if err != nil {
			return nil, nil, 0, err
		}
		for _, rec := range recs {
			v, ok := verdict[rec.ID]
			if !ok || seen[rec.ID] {
				continue
			}
			seen[rec.ID] = true
			if version != "" && rec.Version != version {
				continue
			}
			l := Labelled{ID: rec.ID, Input: rec.Prompt, Output: rec.Output, Expected: v.Expected, Version: rec.Version}
			if v.Verdict == "wrong" {
				wrong = append(wrong, l)
			} else {
				l.Expected = rec.Output
				right = append(right, l)
			}
		}
	}
	for id := range verdict {
		if !seen[id] {
			unknown++
		}
	}
	return wrong, right, unknown, nil
}

// Split is what ForTask made of labelled answers.
type Split struct {
	Failures, Traffic int // failure-log lines, traffic examples
	NotTask           int // prompts that are not the task's template filled with an input
	NotFormat         int // answers marked right that are not in the task's answer format
}

// ForTask turns labelled answers into production mode's inputs: the answers marked wrong
// into failure-log lines {"id", "input", "output", "expected"}, those marked right into
// task examples (the traffic, R). The input is recovered from the task's prompt template.
func ForTask(t *task.Task, wrong, right []Labelled) (failures, traffic []byte, sp Split, err error) {
	for _, l := range wrong {
		text, ok := t.TextOf(l.Input)
		if !ok {
			sp.NotTask++
			continue
		}
		line, err := json.Marshal(map[string]string{"id": l.ID, "input": text, "output": AnswerText(t, l.Output), "expected": l.Expected})
		if err != nil {
			return nil, nil, sp, err
		}
		failures = append(append(failures, line...), '\n')
		sp.Failures++
	}
	for _, l := range right {
		text, ok := t.TextOf(l.Input)
		if !ok {
			sp.NotTask++
			continue
		}
		ex := task.Example{ID: l.ID, Text: text}
		label, entities, ok := t.ParseOutput(l.Output)
		if !ok {
			sp.NotFormat++
			continue
		}
		switch t.Type {
		case task.Classification:
			ex.Label = label
		case task.Extraction:
			ex.Entities = entities
		default:
			ex.Output = AnswerText(t, l.Output)
		}
		line, err := json.Marshal(ex)
		if err != nil {
			return nil, nil, sp, err
		}
		traffic = append(append(traffic, line...), '\n')
		sp.Traffic++
	}
	return failures, traffic, sp, nil
}

// answerField is the output template's field for a task type.
var answerField = map[task.Type]string{task.Classification: "{label}", task.Extraction: "{entities}", task.Generation: "{output}"}

// AnswerText is a completion with the task's output template taken off (" {label}": the
// leading space).
func AnswerText(t *task.Task, completion string) string {
	prefix, suffix, _ := strings.Cut(t.Output, answerField[t.Type])
	s := strings.TrimPrefix(completion, prefix)
	if suffix != "" {
		s, _, _ = strings.Cut(s, suffix)
	}
	return strings.TrimSpace(s)
}
