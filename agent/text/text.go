// Package text is the agent's plain-text toolkit: Unicode normalisation of untrusted
// text, word splitting, a TF-IDF index of a pool of texts for nearest neighbours and the
// vocabulary, and spelling correction by one typing slip.
package text

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Words splits text into lowercase word tokens (letters and digits; apostrophes kept
// inside words).
func Words(s string) []string {
	return Split(s, func(r rune, started bool) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r) || (r == '\'' && started)
	}, nil)
}

// Split splits lower-cased text into tokens: runs of the runes inWord takes (started:
// the run has begun), and each rune alone takes as a token of its own (alone may be
// nil); any other rune separates tokens.
func Split(s string, inWord func(r rune, started bool) bool, alone func(rune) bool) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, r := range strings.ToLower(s) {
		switch {
		case inWord(r, b.Len() > 0):
			b.WriteRune(r)
		case alone != nil && alone(r):
			flush()
			out = append(out, string(r))
		default:
			flush()
		}
	}
	flush()
	return out
}

// Index is a TF-IDF index over a pool of texts (word unigrams and bigrams), for nearest
// neighbours by cosine similarity.
type Index struct {
	df    map[string]int
	n     int
	vocab map[string]int // word -> document frequency (unigrams only)
	// post lists, for each feature, the texts that have it with its weight in their
	// normalised tf-idf vector, in text order.
	post map[string][]posting
}

type posting struct {
	doc int32
	w   float64
}

func features(ws []string) map[string]float64 {
	f := map[string]float64{}
	for i, w := range ws {
		f[w]++
		if i > 0 {
			f[ws[i-1]+" "+w]++
		}
	}
	return f
}

// MaxWordLen is the longest word Correction looks at (in letters): the candidates of a
// word of n letters take about 54·n² bytes, and no word of a language is this long.
const MaxWordLen = 32

// NewIndex indexes a pool of texts.
func NewIndex(texts []string) *Index {
	ix := &Index{df: map[string]int{}, vocab: map[string]int{}, post: map[string][]posting{}, n: len(texts)}
	raw := make([]map[string]float64, len(texts))
	for i, t := range texts {
		ws := Words(t)
		raw[i] = features(ws)
		for k := range raw[i] {
			ix.df[k]++
		}
		seen := map[string]bool{}
		for _, w := range ws {
			if !seen[w] {
				ix.vocab[w]++
				seen[w] = true
			}
		}
	}
	for i, f := range raw {
		for k, w := range ix.weigh(f) {
			ix.post[k] = append(ix.post[k], posting{int32(i), w})
		}
	}
	return ix
}

// weigh turns counts into a unit tf-idf vector. Keys are visited in sorted order so the
// floating-point sums, and with them the ranking of tied neighbours, are reproducible.
func (ix *Index) weigh(f map[string]float64) map[string]float64 {
	v := map[string]float64{}
	var norm float64
	for _, k := range slices.Sorted(maps.Keys(f)) {
		tf := f[k]
		idf := math.Log(float64(ix.n+1) / float64(ix.df[k]+1))
		if idf <= 0 {
			continue
		}
		w := (1 + math.Log(tf)) * idf
		v[k] = w
		norm += w * w
	}
	norm = math.Sqrt(norm)
	for k := range v {
		v[k] /= norm
	}
	return v
}

// Hit is a neighbour: a pool index and its cosine similarity.
type Hit struct {
	I   int
	Sim float64
}

// Nearest returns the k most similar pool texts (similarity > 0), most similar first;
// skip, when set, leaves pool entries out.
func (ix *Index) Nearest(text string, k int, skip func(int) bool) []Hit {
	q := ix.weigh(features(Words(text)))
	score := make([]float64, ix.n) // every contribution is positive: touched texts score above 0
	var touched []int32
	for _, t := range slices.Sorted(maps.Keys(q)) {
		w := q[t]
		for _, p := range ix.post[t] {
			if score[p.doc] == 0 {
				touched = append(touched, p.doc)
			}
			score[p.doc] += w * p.w
		}
	}
	out := make([]Hit, 0, len(touched))
	for _, d := range touched {
		if skip == nil || !skip(int(d)) {
			out = append(out, Hit{int(d), score[d]})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Sim != out[b].Sim {
			return out[a].Sim > out[b].Sim
		}
		return out[a].I < out[b].I
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// Known reports whether a word occurs in the pool.
func (ix *Index) Known(w string) bool { return ix.vocab[w] > 0 }

// Correction finds a pool word within one typing slip of w (a letter dropped, added or
// swapped with its neighbour, or replaced by a key next to it on a QWERTY keyboard),
// preferring the most frequent; "" when none. Substitutions are limited to neighbouring
// keys so that a rare but valid word ("veil", "bloc") is not "corrected" into a common
// one ("neil", "blow").
func (ix *Index) Correction(w string) string {
	if n := utf8.RuneCountInString(w); n < 4 || n > MaxWordLen {
		return ""
	}
	best, bestN := "", 0
	for _, c := range edits1(w) {
		if inflections(c, w) {
			continue // a form the data lacks of a word it has: an inflection, not a slip
		}
		if n := ix.vocab[c]; n > bestN {
			best, bestN = c, n
		}
	}
	return best
}

// inflections reports whether a and b could be forms of one word by regular English
// inflection: the same once an -s, -es, -d or -ed is taken off either ("guides" and
// "guided", "revoke" and "revoked", "ship" and "ships").
func inflections(a, b string) bool {
	stems := func(w string) []string {
		out := []string{w}
		for _, suf := range []string{"s", "es", "d", "ed"} {
			if len(w) > len(suf)+2 && strings.HasSuffix(w, suf) {
				out = append(out, strings.TrimSuffix(w, suf))
			}
		}
		return out
	}
	sb := stems(b)
	for _, s := range stems(a) {
		if slices.Contains(sb, s) {
			return true
		}
	}
	return false
}

func edits1(w string) []string {
	r := []rune(w)
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var out []string
	for i := 0; i <= len(r); i++ {
		if i < len(r) {
			out = append(out, string(r[:i])+string(r[i+1:])) // deletion
			if i+1 < len(r) {
				t := append([]rune(nil), r...)
				t[i], t[i+1] = t[i+1], t[i]
				out = append(out, string(t)) // transposition
			}
		}
		for _, c := range letters {
			if i < len(r) && adjacentKeys(r[i], c) {
				out = append(out, string(r[:i])+string(c)+string(r[i+1:])) // substitution
			}
			out = append(out, string(r[:i])+string(c)+string(r[i:])) // insertion
		}
	}
	return out
}

// qwerty rows, for adjacentKeys.
var qwerty = []string{"qwertyuiop", "asdfghjkl", "zxcvbnm"}

// adjacentKeys reports whether two letters are next to each other on a QWERTY keyboard
// (same row, or the rows above and below, offset by at most one key).
func adjacentKeys(a, b rune) bool {
	ra, ca := keyPos(a)
	rb, cb := keyPos(b)
	if ra < 0 || rb < 0 || a == b {
		return false
	}
	dr, dc := ra-rb, ca-cb
	if dr < -1 || dr > 1 {
		return false
	}
	if dr == 0 {
		return dc == 1 || dc == -1
	}
	// Each lower row sits about half a key to the right of the one above it.
	if dr == 1 { // a is below b
		return dc == 0 || dc == -1
	}
	return dc == 0 || dc == 1
}

func keyPos(r rune) (row, col int) {
	for i, s := range qwerty {
		if j := strings.IndexRune(s, r); j >= 0 {
			return i, j
		}
	}
	return -1, -1
}

// OneEdit reports whether a and b differ by one edit at most: a letter deleted,
// inserted, replaced by any other, or swapped with its neighbour. Unlike Correction it
// takes any substitution: it is for comparing a text with a spelling known to be
// meant (an expected answer's), not for guessing one.
func OneEdit(a, b string) bool {
	r, s := []rune(a), []rune(b)
	if len(r) > len(s) {
		r, s = s, r
	}
	if len(s)-len(r) > 1 {
		return false
	}
	i := 0
	for i < len(r) && r[i] == s[i] {
		i++
	}
	if i == len(r) {
		return true // equal, or one letter added at the end
	}
	if len(r) == len(s) {
		if string(r[i+1:]) == string(s[i+1:]) {
			return true // one replaced
		}
		return i+1 < len(r) && r[i] == s[i+1] && r[i+1] == s[i] && string(r[i+2:]) == string(s[i+2:]) // one swap
	}
	return string(r[i:]) == string(s[i+1:]) // one inserted
}
