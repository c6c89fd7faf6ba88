// Package redact takes personal data out of text before it is stored or sent away:
// e-mail addresses, payment card numbers (13 to 19 digits that pass the Luhn check),
// phone numbers (7 to 15 digits in the shapes people write them, dates excepted), and
// patterns a user adds. Each match becomes a placeholder naming its kind ("[EMAIL]");
// what was replaced is counted by kind, never kept.
package redact

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Rule is one kind of personal data: matches of Pattern become "[NAME]" (Name in
// capitals); Check, when set, must accept a match for it to be replaced.
type Rule struct {
	Name    string
	Pattern *regexp.Regexp
	Check   func(match string) bool
}

// Counts is how many matches of each kind a text had.
type Counts map[string]int

// Add adds c's counts to n.
func (n Counts) Add(c Counts) {
	for k, v := range c {
		n[k] += v
	}
}

// String is "card 1, email 2" (kinds sorted), or "nothing".
func (n Counts) String() string {
	if len(n) == 0 {
		return "nothing"
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// Redactor applies rules in order: the built-in ones, then the user's.
type Redactor struct {
	rules []Rule
}

var (
	email = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	card  = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	phone = regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}\b|\+?\b\d{10,15}\b`)
	date  = regexp.MustCompile(`^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$`)
)

// Builtin is the rules every Redactor starts with.
func Builtin() []Rule {
	return []Rule{
		{Name: "email", Pattern: email},
		{Name: "card", Pattern: card, Check: luhn},
		{Name: "phone", Pattern: phone, Check: phoneLike},
	}
}

// New is a Redactor of the built-in rules and the user's patterns (name -> regular
// expression, Go syntax), the latter applied in name order after the built-in ones.
func New(patterns map[string]string) (*Redactor, error) {
	r := &Redactor{rules: Builtin()}
	names := make([]string, 0, len(patterns))
	for n := range patterns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "[] \t\n") {
			return nil, fmt.Errorf("redact: pattern name %q must be a plain word", n)
		}
		re, err := regexp.Compile(patterns[n])
		if err != nil {
			return nil, fmt.Errorf("redact: pattern %s: %w", n, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("redact: pattern %s matches the empty string", n)
		}
		r.rules = append(r.rules, Rule{Name: n, Pattern: re})
	}
	return r, nil
}

// ParsePatterns reads NAME=REGEXP flags into New's map.
func ParsePatterns(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, expr, ok := strings.Cut(f, "=")
		if !ok || name == "" || expr == "" {
			return nil, fmt.Errorf("redact: pattern %q: want NAME=REGEXP", f)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("redact: pattern %s given twice", name)
		}
		out[name] = expr
	}
	return out, nil
}

// Redact returns text with every match replaced, and the counts. A nil Redactor
// returns text unchanged.
func (r *Redactor) Redact(text string) (string, Counts) {
	n := Counts{}
	if r == nil {
		return text, n
	}
	for _, rule := range r.rules {
		placeholder := "[" + strings.ToUpper(rule.Name) + "]"
		text = rule.Pattern.ReplaceAllStringFunc(text, func(m string) string {
			if rule.Check != nil && !rule.Check(m) {
				return m
			}
			n[rule.Name]++
			return placeholder
		})
	}
	return text, n
}

// digits of s.
func digits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// luhn: the card number check digit (ISO/IEC 7812).
func luhn(s string) bool {
	d := digits(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(d); i++ {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// phoneLike: 7 to 15 digits (ITU-T E.164 allows at most 15), not a date, and
// without separators only when there are at least 10.
func phoneLike(s string) bool {
	d := digits(s)
	if len(d) < 7 || len(d) > 15 || date.MatchString(strings.TrimSpace(s)) {
		return false
	}
	return len(d) >= 10 || strings.ContainsAny(s, " .-()+")
}
