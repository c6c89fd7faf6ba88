package catalog

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
)

// AddBundled adds the tasks embedded in the binary (task.Bundled) to the catalog.
func (c *Catalog) AddBundled() error {
	for _, name := range task.Bundled() {
		d, _, err := openTask(name)
		if err != nil {
			return fmt.Errorf("catalog: bundled task %s: %w", name, err)
		}
		d.Dir = "bundled:" + name
		c.Datasets = append(c.Datasets, d)
	}
	return nil
}

// Match is a dataset's relevance to a query.
type Match struct {
	Dataset *Dataset
	Score   float64
	// Labels are the query's labels the dataset has (up to case, spacing and _ or -).
	Labels []string
}

// BM25's usual constants (Robertson and Zaragoza, 2009).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// words of a dataset's card, labels, entity types and sample rows: what a query is
// matched against. Label names count once each, split at _ and -.
func (d *Dataset) words() []string {
	var w []string
	w = append(w, text.Words(strings.NewReplacer("_", " ", "-", " ").Replace(d.Name))...)
	w = append(w, text.Words(d.Description)...)
	for _, f := range []string{d.Text, d.Label, d.Output} {
		w = append(w, text.Words(strings.ReplaceAll(f, "_", " "))...)
	}
	for _, l := range sortedKeys(d.Labels) {
		w = append(w, text.Words(strings.NewReplacer("_", " ", "-", " ").Replace(l))...)
	}
	for _, t := range sortedKeys(d.Types) {
		w = append(w, text.Words(t)...)
	}
	for _, r := range d.Sample {
		w = append(w, text.Words(r[d.Text])...)
	}
	return w
}

// normLabel compares label names up to case, spacing, _ and -.
func normLabel(s string) string {
	return strings.Join(text.Words(strings.NewReplacer("_", " ", "-", " ").Replace(s)), " ")
}

// Rank scores every dataset against the query words (BM25) plus, for each of labels the
// dataset has, one point: datasets with no word of the query are left out. The best come
// first; equal scores in folder order.
func (c *Catalog) Rank(query string, labels []string) []Match {
	docs := make([][]string, len(c.Datasets))
	stemAll := func(ws []string) []string {
		for i, w := range ws {
			ws[i] = stem(w)
		}
		return ws
	}
	df := map[string]int{}
	total := 0
	for i, d := range c.Datasets {
		docs[i] = stemAll(d.words())
		total += len(docs[i])
		seen := map[string]bool{}
		for _, w := range docs[i] {
			if !seen[w] {
				seen[w] = true
				df[w]++
			}
		}
	}
	if len(docs) == 0 {
		return nil
	}
	avg := float64(total) / float64(len(docs))
	q := map[string]bool{}
	for _, w := range text.Words(query) {
		if !stopWords[w] {
			q[stem(w)] = true
		}
	}
	var out []Match
	for i, d := range c.Datasets {
		tf := map[string]int{}
		for _, w := range docs[i] {
			if q[w] {
				tf[w]++
			}
		}
		score := 0.0
		for w, f := range tf {
			n := float64(df[w])
			idf := math.Log(1 + (float64(len(docs))-n+0.5)/(n+0.5))
			ff := float64(f)
			score += idf * ff * (bm25K1 + 1) / (ff + bm25K1*(1-bm25B+bm25B*float64(len(docs[i]))/avg))
		}
		m := Match{Dataset: d}
		have := map[string]bool{}
		for l := range d.Labels {
			have[normLabel(l)] = true
		}
		for t := range d.Types {
			have[normLabel(t)] = true
		}
		for _, l := range labels {
			if have[normLabel(l)] {
				m.Labels = append(m.Labels, l)
				score++
			}
		}
		if score > 0 {
			m.Score = score
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

// stopWords are words of task descriptions that say nothing about the data.
var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the and or of to in on for with as by from into is are be it its this that these those
		each every some any all what which who whom how when where not no yes do does
		classify classification label labels labelled labeled text texts sentence sentences task data
		model answer answers find pull out give given tell say write one`) {
		stopWords[w] = true
	}
}

// suffixes stem strips, the first that leaves at least 3 letters: enough that a
// description's "summarise" meets a card's "summaries" and "messages" a "message".
var suffixes = []string{"izations", "isations", "ization", "isation", "ations", "ation", "izing", "ising", "ings", "ized", "ised",
	"izes", "ises", "ing", "ize", "ise", "ies", "ied", "es", "ed", "s", "y", "e"}

func stem(w string) string {
	for _, s := range suffixes {
		if len(w)-len(s) >= 3 && strings.HasSuffix(w, s) {
			return w[:len(w)-len(s)]
		}
	}
	return w
}
