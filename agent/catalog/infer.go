package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Column names that usually hold each role, most telling first.
var (
	textNames   = []string{"text", "sentence", "utterance", "query", "question", "question.stem", "content", "sms", "message", "review", "dialogue", "context", "input", "prompt", "document", "article", "source"}
	labelNames  = []string{"label", "labels", "intent", "category", "class", "sentiment", "topic", "answerkey", "target", "y"}
	outputNames = []string{"answer", "summary", "response", "output", "target", "code", "solution", "completion", "reference", "highlights"}
)

// column is what the sample says of one field.
type column struct {
	name     string
	rows     int // rows where it is not empty
	distinct int
	meanLen  float64 // in runes
	json     bool    // most values are JSON arrays
}

func columns(rows []Row) []column {
	byName := map[string]*column{}
	values := map[string]map[string]bool{}
	arrays := map[string]int{}
	for _, r := range rows {
		for k, v := range r {
			c := byName[k]
			if c == nil {
				c = &column{name: k}
				byName[k] = c
				values[k] = map[string]bool{}
			}
			if strings.TrimSpace(v) != "" {
				c.rows++
			}
			c.meanLen += float64(utf8.RuneCountInString(v))
			values[k][v] = true
			if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
				arrays[k]++
			}
		}
	}
	var out []column
	for k, c := range byName {
		c.distinct = len(values[k])
		c.meanLen /= float64(max(1, c.rows))
		c.json = 2*arrays[k] > c.rows
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// nameRank is where name comes in a list of usual names (len(list) when absent).
func nameRank(name string, list []string) int {
	n := strings.ToLower(name)
	if i := slices.Index(list, n); i >= 0 {
		return i
	}
	return len(list)
}

// infer fills the card's kind and fields that were not written, from the first split's
// rows: a label is a short field with few distinct values; the text the longest field
// of mostly distinct values (a usual name first); an answer a second such field of an
// answer's name, or a label-less dataset's second long field.
func (d *Dataset) infer(rows []Row) {
	cols := columns(rows)
	n := len(rows)
	get := func(name string) *column {
		for i := range cols {
			if cols[i].name == name {
				return &cols[i]
			}
		}
		return nil
	}
	isLabel := func(c column) bool {
		return !c.json && c.rows >= n*9/10 && c.distinct >= 2 && c.distinct <= max(2, min(500, n/4)) && c.meanLen <= 40
	}
	isText := func(c column) bool {
		return !c.json && c.rows >= n*9/10 && c.distinct >= max(2, n/2) && c.meanLen >= 8
	}
	// Multiple choice first: a list of choices beside a short key field.
	if d.Choices == "" && (d.Kind == "" || d.Kind == MultipleChoice) {
		for _, c := range cols {
			name := strings.TrimSuffix(strings.TrimSuffix(c.name, ".label"), ".text")
			if c.json && strings.HasSuffix(strings.ToLower(name), "choices") {
				d.Choices = name
				d.Inferred = append(d.Inferred, "choices")
				break
			}
		}
	}
	if d.Choices != "" && d.Label == "" {
		for _, c := range cols {
			if !c.json && c.meanLen <= 3 && nameRank(c.name, []string{"answerkey", "answer", "label", "key", "gold"}) < 5 {
				d.Label = c.name
				d.Inferred = append(d.Inferred, "label")
				break
			}
		}
	}
	// An answer-named field of long, distinct texts makes a generation dataset unless a
	// label-named field says otherwise.
	answerField := ""
	for _, c := range cols {
		if isText(c) && nameRank(c.name, outputNames) < len(outputNames) && nameRank(c.name, textNames) == len(textNames) {
			answerField = c.name
		}
	}
	if d.Label == "" && d.Kind != Generation {
		var best *column
		for i, c := range cols {
			if c.name == d.Text || c.name == d.Output || !isLabel(c) {
				continue
			}
			if best == nil || nameRank(c.name, labelNames) < nameRank(best.name, labelNames) ||
				nameRank(c.name, labelNames) == nameRank(best.name, labelNames) && c.distinct < best.distinct {
				best = &cols[i]
			}
		}
		labelNamed := best != nil && nameRank(best.name, labelNames) < len(labelNames)
		if best != nil && (d.Kind == Classification || labelNamed || best.distinct <= 50 && answerField == "") {
			d.Label = best.name
			d.Inferred = append(d.Inferred, "label")
		}
	}
	if d.Text == "" {
		var best *column
		for i, c := range cols {
			if c.name == d.Label || c.name == d.Output || !isText(c) {
				continue
			}
			if best == nil || nameRank(c.name, textNames) < nameRank(best.name, textNames) ||
				nameRank(c.name, textNames) == nameRank(best.name, textNames) && c.meanLen > best.meanLen {
				best = &cols[i]
			}
		}
		if best != nil {
			d.Text = best.name
			d.Inferred = append(d.Inferred, "text")
		}
	}
	if d.Text == "" || get(d.Text) == nil {
		d.Kind = Unknown
		return
	}
	if d.Output == "" && d.Label == "" {
		var best *column
		for i, c := range cols {
			if c.name == d.Text || !isText(c) || strings.HasSuffix(c.name, "id") {
				continue
			}
			if best == nil || nameRank(c.name, outputNames) < nameRank(best.name, outputNames) {
				best = &cols[i]
			}
		}
		if best != nil {
			d.Output = best.name
			d.Inferred = append(d.Inferred, "output")
		}
	}
	if d.Kind == "" {
		switch {
		case d.Choices != "" && d.Label != "":
			d.Kind = MultipleChoice
		case d.Label != "":
			d.Kind = Classification
		case d.Output != "":
			d.Kind = Generation
		default:
			d.Kind = Unknown
			return
		}
		d.Inferred = append(d.Inferred, "kind")
	}
	// A generation dataset's tests: a field named for them whose values are lists of
	// Python asserts (MBPP's test_list).
	if d.Kind == Generation && d.Tests == "" {
		for _, c := range cols {
			if c.json && strings.Contains(strings.ToLower(c.name), "test") && assertLists(rows, c.name) {
				d.Tests = c.name
				d.Inferred = append(d.Inferred, "tests")
				break
			}
		}
	}
}

// assertLists reports whether most of the rows' field holds a JSON list of strings, each
// a Python assert.
func assertLists(rows []Row, field string) bool {
	n, ok := 0, 0
	for _, r := range rows {
		v := strings.TrimSpace(r[field])
		if v == "" {
			continue
		}
		n++
		if ts, err := testsOf(v); err == nil && len(ts) > 0 {
			ok++
		}
	}
	return n > 0 && 2*ok > n
}

// testsOf reads a field of tests: a JSON list of Python statements, every one an assert.
func testsOf(v string) ([]string, error) {
	var ts []string
	if err := json.Unmarshal([]byte(v), &ts); err != nil {
		return nil, fmt.Errorf("tests %.60q: not a JSON list of strings", v)
	}
	for _, t := range ts {
		if !strings.HasPrefix(strings.TrimSpace(t), "assert") {
			return nil, fmt.Errorf("test %.60q is not an assert", t)
		}
	}
	return ts, nil
}
