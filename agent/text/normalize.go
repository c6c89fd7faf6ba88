package text

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Normalize puts untrusted text into the form every check reads: Unicode NFKC
// (full-width and other compatibility forms become their plain letters, "ｉｇｎｏｒｅ" is
// "ignore"), invisible format characters removed (zero-width spaces and joiners, the
// byte-order mark, soft hyphens, bidirectional controls: "ig\u200bnore" is "ignore"),
// and other control characters and Unicode spaces turned into plain spaces. It reports
// whether anything changed.
func Normalize(s string) (string, bool) {
	n := norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(n))
	for _, r := range n {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case unicode.Is(unicode.Cf, r):
			// invisible: dropped
		case unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' '):
			b.WriteByte(' ')
		case r == unicode.ReplacementChar:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	return out, out != s
}
