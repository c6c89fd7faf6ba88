package triage

import (
	"fmt"
	"strconv"
)

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
func itoa(n int) string     { return strconv.Itoa(n) }
func quote(s string) string { return fmt.Sprintf("%q", s) }
