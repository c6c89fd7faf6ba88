// Package format holds the small number formatting the CLI and the agent's reports share.
package format

import "fmt"

// Commas writes n with thousands separators: 1234567 -> "1,234,567".
func Commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
