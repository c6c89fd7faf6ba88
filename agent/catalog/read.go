package catalog

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// read reads every split, infers the fields the card leaves out and counts labels or
// entity types.
func (d *Dataset) read() error {
	if err := d.expandJSONSplits(); err != nil {
		return err
	}
	for _, s := range d.SplitNames() {
		f := d.Splits[s]
		format := dataFile(strings.SplitN(f, "#", 2)[0])
		if d.Format == "" {
			d.Format = format
		} else if d.Format != format {
			return fmt.Errorf("splits in two formats (%s, %s)", d.Format, format)
		}
	}
	if d.Format == "conll" {
		if d.Kind == "" {
			d.Kind = Extraction
			d.Inferred = append(d.Inferred, "kind")
		}
		for _, s := range d.SplitNames() {
			sents, err := readCoNLL(filepath.Join(d.Dir, d.Splits[s]))
			if err != nil {
				return err
			}
			d.Rows[s] = len(sents)
			for i, sent := range sents {
				for _, e := range sent.Entities {
					d.Types[e.Type]++
				}
				if len(d.Sample) < sampleRows && i < sampleRows {
					d.Sample = append(d.Sample, Row{"text": sent.Text})
				}
			}
		}
		d.Text = "text"
		return nil
	}
	var first []Row
	for i, s := range d.SplitNames() {
		rows, err := d.rows(s)
		if err != nil {
			return err
		}
		d.Rows[s] = len(rows)
		if i == 0 {
			first = rows
		}
	}
	if len(first) == 0 {
		return errors.New("no rows")
	}
	d.infer(first)
	if d.Kind == Unknown {
		what := "no text field"
		if d.Text != "" {
			what = fmt.Sprintf("text field %q but no label or answer field", d.Text)
		}
		return fmt.Errorf("%s found in %d rows (fields %s)", what, len(first), strings.Join(fieldNames(first), ", "))
	}
	for _, s := range d.SplitNames() {
		if d.Kind != Classification && d.Kind != MultipleChoice {
			break
		}
		rows, err := d.rows(s)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if l := d.labelOf(r); l != "" {
				if d.Kind == MultipleChoice {
					l = letterKey(l)
				}
				d.Labels[l]++
			}
		}
	}
	d.Sample = first[:min(sampleRows, len(first))]
	return nil
}

// rows reads one split of a tabular or JSON dataset.
func (d *Dataset) rows(split string) ([]Row, error) {
	f, key, _ := strings.Cut(d.Splits[split], "#")
	path := filepath.Join(d.Dir, f)
	var rows []Row
	var err error
	switch d.Format {
	case "jsonl":
		rows, err = readJSONL(path)
	case "csv", "tsv":
		rows, err = readTable(path, d.Format == "tsv")
	case "json-splits":
		var all map[string][]Row
		all, err = readJSONSplits(path)
		rows = all[key]
	default:
		return nil, fmt.Errorf("%s: format %q", path, d.Format)
	}
	if err != nil {
		return nil, err
	}
	return d.alignFields(rows), nil
}

// alignFields renames a split's fields to the dataset's names where the split calls them
// otherwise (SST-2's train.tsv has "sentence", its dev.tsv and test.tsv "content"): the
// split's own fields are inferred as the first split's were, and each role the two name
// differently is renamed. Before the dataset's fields are known, or where the split has
// them all, the rows are returned as read.
func (d *Dataset) alignFields(rows []Row) []Row {
	roles := d.roles()
	if len(rows) == 0 || d.Text == "" {
		return rows
	}
	has := func(name string) bool {
		if _, ok := rows[0][name]; ok {
			return true
		}
		_, ok := rows[0][name+".text"] // a flattened list of choices
		return ok
	}
	missing := false
	for _, f := range roles {
		missing = missing || f != "" && !has(f)
	}
	if !missing {
		return rows
	}
	own := &Dataset{Card: Card{Kind: d.Kind}}
	own.infer(rows)
	rename := map[string]string{}
	for i, f := range own.roles() {
		if f != "" && roles[i] != "" && f != roles[i] && !has(roles[i]) {
			rename[f] = roles[i]
		}
	}
	if len(rename) == 0 {
		return rows
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = make(Row, len(r))
		for k, v := range r {
			if to, ok := rename[k]; ok {
				k = to
			}
			out[i][k] = v
		}
	}
	return out
}

// roles are the fields the dataset reads, in one order: text, label, output, choices,
// tests ("" where it has none).
func (d *Dataset) roles() []string { return []string{d.Text, d.Label, d.Output, d.Choices, d.Tests} }

// expandJSONSplits turns a JSON file of splits ({"train": [[text, label], ...], ...}) into
// one split per key, named as usual (val, dev: validation).
func (d *Dataset) expandJSONSplits() error {
	if len(d.Splits) != 1 || d.Splits["data"] == "" || dataFile(d.Splits["data"]) != "json-splits" {
		return nil
	}
	// A folder may hold more than one JSON file: the first that is a file of splits.
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return err
	}
	var why []string
	for _, e := range entries {
		if e.IsDir() || dataFile(e.Name()) != "json-splits" {
			continue
		}
		all, err := readJSONSplits(filepath.Join(d.Dir, e.Name()))
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		d.Splits = map[string]string{}
		for k := range all {
			name := k
			switch strings.ToLower(k) {
			case "val", "dev", "valid", "validation":
				name = "validation"
			case "train", "test":
				name = strings.ToLower(k)
			}
			d.Splits[name] = e.Name() + "#" + k
		}
		return nil
	}
	return fmt.Errorf("no JSON file of splits: %s", strings.Join(why, "; "))
}

// readJSONSplits reads {"split": [[text, label], ...], ...} into rows {text, label}.
func readJSONSplits(path string) (map[string][]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string][][]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: not an object of splits of [text, label] rows: %w", filepath.Base(path), err)
	}
	out := map[string][]Row{}
	for k, rows := range raw {
		for i, r := range rows {
			if len(r) != 2 {
				return nil, fmt.Errorf("%s: %s row %d has %d values, want [text, label]", filepath.Base(path), k, i+1, len(r))
			}
			t, ok1 := r[0].(string)
			l, ok2 := r[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: %s row %d is not two strings", filepath.Base(path), k, i+1)
			}
			out[k] = append(out[k], Row{"text": t, "label": l})
		}
	}
	return out, nil
}

// readJSONL reads objects, nested ones flattened ("question.stem"); arrays become their
// JSON text.
func readJSONL(path string) ([]Row, error) {
	var out []Row
	errEnough := errors.New("enough rows")
	err := jsonl.ReadFile(path, jsonl.DefaultMaxLine, func(l jsonl.Line) error {
		if len(out) >= maxRows {
			return errEnough
		}
		if l.TooLong {
			return fmt.Errorf("%s line %d: %s", filepath.Base(path), l.N, l.TooLongReason(jsonl.DefaultMaxLine))
		}
		var obj map[string]any
		if err := json.Unmarshal(l.Bytes, &obj); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), l.N, err)
		}
		r := Row{}
		flatten("", obj, r)
		out = append(out, r)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

func flatten(prefix string, obj map[string]any, r Row) {
	for k, v := range obj {
		name := prefix + k
		switch v := v.(type) {
		case string:
			r[name] = v
		case float64:
			r[name] = strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			r[name] = strconv.FormatBool(v)
		case map[string]any:
			flatten(name+".", v, r)
		case nil:
		default:
			b, err := json.Marshal(v)
			if err == nil {
				r[name] = string(b)
			}
		}
	}
}

// readTable reads a CSV or TSV file whose first row names the columns.
func readTable(path string, tab bool) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var next func() ([]string, error) // the next record, io.EOF at the end
	var line func() int               // the current record's line
	if tab {                          // TSV has no quoting: a record is a line, its fields split at tabs
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		n := 0
		next = func() ([]string, error) {
			for sc.Scan() {
				n++
				if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
					return strings.Split(l, "\t"), nil
				}
			}
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		line = func() int { return n }
	} else {
		cr := csv.NewReader(bufio.NewReader(f))
		cr.FieldsPerRecord = -1
		next = cr.Read
		line = func() int { l, _ := cr.FieldPos(0); return l }
	}
	head, err := next()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", filepath.Base(path), err)
	}
	for i, h := range head {
		head[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if head[i] == "" {
			head[i] = fmt.Sprintf("column%d", i+1)
		}
	}
	var out []Row
	for len(out) < maxRows {
		rec, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if len(rec) != len(head) {
			return nil, fmt.Errorf("%s line %d: %d fields, the header has %d", filepath.Base(path), line(), len(rec), len(head))
		}
		r := Row{}
		for i, v := range rec {
			r[head[i]] = v
		}
		out = append(out, r)
	}
	return out, nil
}

// Sentence is a CoNLL sentence: its tokens joined by spaces, and its entities.
type Sentence struct {
	Text     string
	Entities []Span
}

// Span is a typed entity span of a sentence.
type Span struct{ Type, Text string }

// readCoNLL reads token-per-line files: the first column the token, the last its IOB2
// (or IOB1) tag, a blank line between sentences, -DOCSTART- lines skipped.
func readCoNLL(path string) ([]Sentence, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Sentence
	var toks []string
	var spans []Span
	cur := -1 // index in spans of the open entity
	flush := func() {
		if len(toks) > 0 {
			out = append(out, Sentence{Text: strings.Join(toks, " "), Entities: spans})
		}
		toks, spans, cur = nil, nil, -1
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() && len(out) < maxRows {
		n++
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			flush()
			continue
		}
		if fs[0] == "-DOCSTART-" {
			continue
		}
		if len(fs) < 2 {
			return nil, fmt.Errorf("%s line %d: want a token and a tag", filepath.Base(path), n)
		}
		tok, tag := fs[0], fs[len(fs)-1]
		kind, typ, _ := strings.Cut(tag, "-")
		switch {
		case tag == "O":
			cur = -1
		case (kind == "B" || kind == "I") && typ != "":
			if kind == "B" || cur < 0 || spans[cur].Type != typ {
				spans = append(spans, Span{Type: typ, Text: tok})
				cur = len(spans) - 1
			} else {
				spans[cur].Text += " " + tok
			}
		default:
			return nil, fmt.Errorf("%s line %d: tag %q is not O, B-TYPE or I-TYPE", filepath.Base(path), n, tag)
		}
		toks = append(toks, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	flush()
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no sentences", filepath.Base(path))
	}
	return out, nil
}

func fieldNames(rows []Row) []string {
	seen := map[string]bool{}
	for _, r := range rows[:min(len(rows), sampleRows)] {
		for k := range r {
			seen[k] = true
		}
	}
	out := sortedKeys(seen)
	slices.Sort(out)
	return out
}

// multipleChoice renders a row's question with its choices lettered, one per line, and
// the right choice's letter (keys 1-9 become A-I); ok is false when the key is not one
// of the choices.
func (d *Dataset) multipleChoice(r Row) (string, string, bool) {
	type choice struct{ Text, Label string }
	var cs []choice
	if raw, ok := r[d.Choices]; ok {
		if err := json.Unmarshal([]byte(raw), &cs); err != nil {
			return "", "", false
		}
	} else {
		var labels, texts []string
		if json.Unmarshal([]byte(r[d.Choices+".label"]), &labels) != nil || json.Unmarshal([]byte(r[d.Choices+".text"]), &texts) != nil || len(labels) != len(texts) {
			return "", "", false
		}
		for i := range labels {
			cs = append(cs, choice{Text: texts[i], Label: labels[i]})
		}
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(r[d.Text]))
	key := letterKey(d.labelOf(r))
	found := false
	for _, c := range cs {
		l := letterKey(c.Label)
		fmt.Fprintf(&b, "\n%s. %s", l, strings.TrimSpace(c.Text))
		found = found || l == key
	}
	return b.String(), key, found && len(cs) >= 2
}

// letterKey writes a choice key as a letter: "1" is "A".
func letterKey(k string) string {
	if len(k) == 1 && k[0] >= '1' && k[0] <= '9' {
		return string(rune('A' + k[0] - '1'))
	}
	return strings.ToUpper(k)
}

// labelOf is a row's label, named by the card's label_names where it gives one.
func (d *Dataset) labelOf(r Row) string {
	l := strings.TrimSpace(r[d.Label])
	if n, ok := d.LabelNames[l]; ok {
		return n
	}
	return l
}

// Examples reads a split as task examples (ids "<split>-<row>"): text and label, text and
// entities, or text and answer, by the dataset's kind. Rows without a text, or without
// the label or answer, are left out and counted.
func (d *Dataset) Examples(split string) (exs []task.Example, skipped int, err error) {
	if _, ok := d.Splits[split]; !ok {
		return nil, 0, fmt.Errorf("dataset %s has no split %q (it has %s)", d.Name, split, strings.Join(d.SplitNames(), ", "))
	}
	id := func(i int) string { return fmt.Sprintf("%s-%d", split, i+1) }
	if d.Format == "task" {
		exs, err := d.task.Split(split)
		return exs, 0, err
	}
	if d.Format == "conll" {
		sents, err := readCoNLL(filepath.Join(d.Dir, d.Splits[split]))
		if err != nil {
			return nil, 0, err
		}
		for i, s := range sents {
			ex := task.Example{ID: id(i), Text: s.Text}
			for _, e := range s.Entities {
				ex.Entities = append(ex.Entities, task.Entity{Type: e.Type, Text: e.Text})
			}
			exs = append(exs, ex)
		}
		return exs, 0, nil
	}
	rows, err := d.rows(split)
	if err != nil {
		return nil, 0, err
	}
	for i, r := range rows {
		ex := task.Example{ID: id(i), Text: strings.TrimSpace(r[d.Text])}
		switch d.Kind {
		case Classification:
			ex.Label = d.labelOf(r)
			if ex.Label == "" {
				skipped++
				continue
			}
		case MultipleChoice:
			q, key, ok := d.multipleChoice(r)
			if !ok {
				skipped++
				continue
			}
			ex.Text, ex.Label = q, key
		case Generation:
			ex.Output = strings.TrimSpace(r[d.Output])
			if ex.Output == "" {
				skipped++
				continue
			}
			if d.Tests != "" {
				ts, err := testsOf(r[d.Tests])
				if err != nil || len(ts) == 0 {
					skipped++ // an answer that cannot be checked
					continue
				}
				ex.Tests = ts
			}
		}
		if ex.Text == "" {
			skipped++
			continue
		}
		exs = append(exs, ex)
	}
	return exs, skipped, nil
}

// openTask reads a Pioneer task folder (task.yaml beside its splits) as a dataset.
func openTask(dir string) (*Dataset, bool, error) {
	t, err := task.Load(dir)
	if err != nil {
		return nil, false, err
	}
	d := &Dataset{Dir: dir, Format: "task", task: t, Labels: map[string]int{}, Types: map[string]int{}, Rows: map[string]int{},
		Card: Card{Name: t.Name, Description: t.Description, Text: "text", Splits: map[string]string{}}}
	switch t.Type {
	case task.Classification:
		d.Kind, d.Label = Classification, "label"
	case task.Extraction:
		d.Kind = Extraction
	default:
		d.Kind, d.Output = Generation, "output"
	}
	for name, f := range map[string]string{"train": t.Data.Train, "validation": t.Data.Validation, "test": t.Data.Test} {
		if f == "" {
			continue
		}
		d.Splits[name] = f
		exs, err := t.Split(name)
		if err != nil {
			return nil, false, err
		}
		d.Rows[name] = len(exs)
		for _, ex := range exs {
			if ex.Label != "" {
				d.Labels[ex.Label]++
			}
			for _, e := range ex.Entities {
				d.Types[e.Type]++
			}
			if name == "train" && len(d.Sample) < sampleRows {
				d.Sample = append(d.Sample, Row{"text": ex.Text})
			}
		}
	}
	return d, true, nil
}
