package chat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

var (
	rawTag    = regexp.MustCompile(`^\{%[-+]?\s*raw\s*[-+]?%\}$`)
	endRawTag = regexp.MustCompile(`\{%[-+]?\s*endraw\s*[-+]?%\}`)
)

// prepareSource rewrites a template source, without changing its meaning under Python
// Jinja, around gonja v2.9.1 differences:
//
//   - conditional expressions: gonja parses "A if C else B" only as a whole {{ }}
//     expression or set value, not inside parentheses, brackets, braces or call
//     arguments; and it cannot call a method on a parenthesized expression, as in
//     "(x | default(y)).strip()". Each such expression is moved into a
//     {% set __chat_condN = ... %} placed just before its tag and replaced by the
//     variable (see hoistConditionals).
//   - lstrip_blocks: Jinja strips the spaces and tabs before a {% or {# tag only when
//     nothing but whitespace precedes the tag on its line; gonja also strips them when
//     they follow another tag on the same line, as in "{{ x }} {% endif %}". There,
//     "+" is added to the tag ("{%+"), which tells both engines not to strip.
//   - string literals: Jinja decodes them with Python's escape rules (backslash-newline
//     continues the line, \x41, \u00e9, \101, unknown escapes kept, a literal may end
//     in an escaped backslash); gonja only knows Go's escapes and mis-reads 'a\\'.
//     Literals containing a backslash are decoded as Python does and written back
//     with only escapes gonja reads the same way.
//
// A source whose tags do not close is returned as it is, for the parser to report.
func prepareSource(src string) string {
	segs, ok := splitTags(src)
	if !ok {
		return src
	}
	// conditional expressions and method calls on parenthesized expressions
	n := 0
	var hoisted []segment
	for _, sg := range segs {
		if sg.kind == '{' || sg.kind == '%' {
			pre, tag := hoistConditionals(sg.text, &n)
			if len(pre) > 0 {
				open := tagOpening(sg.text)
				for _, expr := range pre {
					hoisted = append(hoisted, segment{kind: '%', text: open + " set " + expr + " %}"})
				}
				sg.text = tag
			}
		}
		hoisted = append(hoisted, sg)
	}
	// lstrip_blocks and string literals
	var b strings.Builder
	prevTag := false
	data := ""
	for _, sg := range hoisted {
		switch sg.kind {
		case 0:
			data = sg.text
			b.WriteString(sg.text)
			continue
		case 'r':
			b.WriteString(sg.text)
		default:
			tag := sg.text
			if (sg.kind == '%' || sg.kind == '#') && prevTag && isSpacesAndTabs(data) && tag[2] != '+' && tag[2] != '-' {
				tag = tag[:2] + "+" + tag[2:]
			}
			if sg.kind != '#' {
				tag = rewriteStrings(tag)
			}
			b.WriteString(tag)
		}
		prevTag, data = true, ""
	}
	return b.String()
}

// segment is a piece of template source: text (kind 0), a tag (kind '{', '%' or '#'
// for {{ }}, {% %} and {# #}), or the verbatim body of a raw block with its endraw
// tag (kind 'r').
type segment struct {
	kind byte
	text string
}

// splitTags cuts a source into segments; ok is false when a tag does not close.
func splitTags(src string) (segs []segment, ok bool) {
	pos := 0
	for {
		j := nextTagStart(src, pos)
		if j < 0 {
			if pos < len(src) {
				segs = append(segs, segment{text: src[pos:]})
			}
			return segs, true
		}
		if j > pos {
			segs = append(segs, segment{text: src[pos:j]})
		}
		end := tagEnd(src, j)
		if end < 0 {
			return nil, false
		}
		segs = append(segs, segment{kind: src[j+1], text: src[j:end]})
		pos = end
		if src[j+1] == '%' && rawTag.MatchString(src[j:end]) {
			loc := endRawTag.FindStringIndex(src[end:])
			if loc == nil {
				return nil, false
			}
			segs = append(segs, segment{kind: 'r', text: src[end : end+loc[1]]})
			pos = end + loc[1]
		}
	}
}

// tagOpening returns the block opening to give a set tag inserted before tag, so that
// the whitespace before them is treated as it was before tag alone: "{%-" after a "-"
// opening, "{%+" for an expression tag without one (lstrip_blocks does not apply to
// those), else the tag's own block opening.
func tagOpening(tag string) string {
	if tag[2] == '-' {
		return "{%-"
	}
	if tag[1] == '{' || tag[2] == '+' {
		return "{%+"
	}
	return "{%"
}

// rewriteStrings re-encodes the string literals of one tag that contain a backslash.
func rewriteStrings(tag string) string {
	if !strings.Contains(tag, `\`) {
		return tag
	}
	var b strings.Builder
	last := 0
	for k := 0; k < len(tag); k++ {
		q := tag[k]
		if q != '\'' && q != '"' {
			continue
		}
		e := k + 1
		for e < len(tag) && tag[e] != q {
			if tag[e] == '\\' {
				e++
			}
			e++
		}
		if e >= len(tag) {
			break // unterminated: leave it to the parser
		}
		content := tag[k+1 : e]
		if strings.Contains(content, `\`) {
			if v, ok := pyUnescape(content); ok {
				b.WriteString(tag[last:k])
				b.WriteString(gonjaQuote(v))
				last = e + 1
			}
		}
		k = e
	}
	if last == 0 {
		return tag
	}
	b.WriteString(tag[last:])
	return b.String()
}

// pyUnescape decodes the text of a string literal as Jinja does: newlines normalized,
// then Python's unicode-escape rules. ok is false for escapes Python rejects (and for
// \N{name}, which is not supported here).
func pyUnescape(s string) (string, bool) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return "", false
		}
		i++
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'f':
			b.WriteByte(12)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, k := 0, 0
			for ; k < 3 && i+k < len(s) && s[i+k] >= '0' && s[i+k] <= '7'; k++ {
				n = n*8 + int(s[i+k]-'0')
			}
			b.WriteRune(rune(n))
			i += k - 1
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+width >= len(s) {
				return "", false
			}
			n, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
			if err != nil || n > unicode.MaxRune {
				return "", false
			}
			b.WriteRune(rune(n))
			i += width
		case 'N':
			return "", false
		default: // unknown escapes keep their backslash
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// gonjaQuote writes a string literal that gonja decodes to v: no raw backslash or
// quote inside (gonja's lexer mis-reads a literal ending in an escaped backslash), and
// line breaks and control characters as escapes (gonja turns a raw CR into LF).
func gonjaQuote(v string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range v {
		switch {
		case r == '\\':
			b.WriteString(`\x5c`)
		case r == '\'':
			b.WriteString(`\x27`)
		case r == '"':
			b.WriteString(`\x22`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func isSpacesAndTabs(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}

// nextTagStart returns the index of the next "{{", "{%" or "{#" at or after i, or -1.
func nextTagStart(src string, i int) int {
	for {
		k := strings.IndexByte(src[i:], '{')
		if k < 0 || i+k+1 >= len(src) {
			return -1
		}
		i += k
		switch src[i+1] {
		case '{', '%', '#':
			return i
		}
		i++
	}
}

// tagEnd returns the index just after the tag that starts at j, or -1 if it does not
// close. Inside {{ }} and {% %} it skips string literals and, as Jinja's lexer does,
// only ends the tag outside brackets.
func tagEnd(src string, j int) int {
	kind := src[j+1]
	if kind == '#' {
		k := strings.Index(src[j+2:], "#}")
		if k < 0 {
			return -1
		}
		return j + 2 + k + 2
	}
	end := "}}"
	if kind == '%' {
		end = "%}"
	}
	depth := 0
	var quote byte
	for k := j + 2; k < len(src); k++ {
		c := src[k]
		if quote != 0 {
			if c == '\\' {
				k++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if depth == 0 && strings.HasPrefix(src[k:], end) {
			return k + 2
		}
		switch c {
		case '\'', '"':
			quote = c
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return -1
}

// hoistConditionals finds, in one {{ }} tag or set/if/for/do tag, the conditional
// expressions inside brackets ("A if C else B", or "A if C", whose value is then none)
// and the parenthesized expressions a method is called on, innermost first, and
// returns them as "NAME = ..." assignments with the tag rewritten to use the names.
// Only the iterable of a for tag is looked at: its "if" filters the loop and can use
// the loop variables; elif tags are left alone. A hoisted expression is evaluated
// before the rest of its tag instead of when Python reaches it, which matters only if
// evaluating it fails where Python would not have evaluated it (after a false "and").
func hoistConditionals(tag string, n *int) (pre []string, out string) {
	open, close := 2, 2
	if tag[2] == '-' || tag[2] == '+' {
		open = 3
	}
	if len(tag) >= open+3 && (tag[len(tag)-3] == '-' || tag[len(tag)-3] == '+') {
		close = 3
	}
	if len(tag) < open+close {
		return nil, tag
	}
	body := tag[open : len(tag)-close]
	from, to := 0, len(body)
	if tag[1] == '%' {
		kw := strings.TrimLeft(body, " \t\n")
		word := kw[:len(kw)-len(strings.TrimLeft(kw, "abcdefghijklmnopqrstuvwxyz_"))]
		switch word {
		case "set", "if", "do":
		case "for":
			in := topLevelWord(body, "in")
			if in < 0 {
				return nil, tag
			}
			from = in + 2
			for _, w := range []string{"if", "recursive"} {
				if k := topLevelWord(body[from:], w); k >= 0 && from+k < to {
					to = from + k
				}
			}
		default:
			return nil, tag
		}
	}
	if !strings.Contains(body[from:to], "if") && !strings.Contains(body[from:to], ").") &&
		!strings.Contains(body[from:to], ") .") {
		return nil, tag
	}
	region := rewriteGroups(body[from:to], n, &pre)
	if len(pre) == 0 {
		return nil, tag
	}
	return pre, tag[:open] + body[:from] + region + body[to:] + tag[len(tag)-close:]
}

// rewriteGroups processes the bracket groups of an expression text.
func rewriteGroups(s string, n *int, pre *[]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			e := stringEnd(s, i)
			b.WriteString(s[i:e])
			i = e - 1
		case '(', '[', '{':
			end := matchBracket(s, i)
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			inner := hoistPieces(rewriteGroups(s[i+1:end], n, pre), c, n, pre)
			if c == '(' && methodCallNext.MatchString(s[end+1:]) && topLevelComma(inner) < 0 &&
				(i == 0 || !isIdentByte(s[i-1])) {
				// "(X).method(...)": gonja cannot call a method on a parenthesized
				// expression, but can on a variable.
				name := fmt.Sprintf("__chat_cond%d", *n)
				*n++
				*pre = append(*pre, name+" = "+strings.TrimSpace(inner))
				b.WriteString(name)
			} else {
				b.WriteByte(c)
				b.WriteString(inner)
				b.WriteByte(s[end])
			}
			i = end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hoistPieces replaces the conditional expressions among the comma- or colon-separated
// items of a bracket group's content.
func hoistPieces(s string, open byte, n *int, pre *[]string) string {
	var b strings.Builder
	start := 0
	flush := func(piece string) {
		if topLevelWord(piece, "if") < 0 {
			b.WriteString(piece)
			return
		}
		prefix := ""
		if m := kwargPrefix.FindString(piece); open == '(' && m != "" && !strings.HasPrefix(piece[len(m):], "=") {
			prefix, piece = m, piece[len(m):]
		}
		expr := strings.TrimSpace(piece)
		lead := piece[:strings.Index(piece, expr)]
		trail := piece[len(lead)+len(expr):]
		if topLevelWord(expr, "else") < 0 {
			expr += " else none"
		}
		name := fmt.Sprintf("__chat_cond%d", *n)
		*n++
		*pre = append(*pre, name+" = "+expr)
		b.WriteString(prefix + lead + name + trail)
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			i = stringEnd(s, i) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',', ':':
			if depth == 0 {
				flush(s[start:i])
				b.WriteByte(c)
				start = i + 1
			}
		}
	}
	flush(s[start:])
	return b.String()
}

// methodCallNext matches ".name(" at the start of a text.
var methodCallNext = regexp.MustCompile(`^\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\(`)

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// topLevelComma returns the index of the first comma outside strings and brackets.
func topLevelComma(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			i = stringEnd(s, i) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// kwargPrefix matches "name=" at the start of a call argument (not "name ==").
var kwargPrefix = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*=`)

// topLevelWord returns the index of the first occurrence of word as a whole word
// outside strings and brackets, or -1.
func topLevelWord(s, word string) int {
	depth := 0
	isIdent := isIdentByte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			i = stringEnd(s, i) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		default:
			if depth == 0 && strings.HasPrefix(s[i:], word) &&
				(i == 0 || !isIdent(s[i-1]) && s[i-1] != '.') &&
				(i+len(word) == len(s) || !isIdent(s[i+len(word)])) {
				return i
			}
		}
	}
	return -1
}

// stringEnd returns the index just after the string literal starting at i (or len(s)).
func stringEnd(s string, i int) int {
	q := s[i]
	for k := i + 1; k < len(s); k++ {
		if s[k] == '\\' {
			k++
		} else if s[k] == q {
			return k + 1
		}
	}
	return len(s)
}

// matchBracket returns the index of the bracket closing the one at i, or -1.
func matchBracket(s string, i int) int {
	depth := 0
	for k := i; k < len(s); k++ {
		switch s[k] {
		case '\'', '"':
			k = stringEnd(s, k) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}
