package redact

import (
	"strings"
	"testing"
)

func TestRedactBuiltin(t *testing.T) {
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, want string
		counts   string
	}{
		{"mail me at jane.doe+bank@example.co.uk please", "mail me at [EMAIL] please", "email 1"},
		{"card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice", "card 1"},
		{"card 4111-1111-1111-1112 fails Luhn", "card 4111-1111-1111-1112 fails Luhn", "nothing"},
		{"call +44 20 7946 0958 or (555) 123-4567", "call [PHONE] or [PHONE]", "phone 2"},
		{"my number is 5551234567.", "my number is [PHONE].", "phone 1"},
		{"on 2026-12-01 I paid 250 dollars for order 12345", "on 2026-12-01 I paid 250 dollars for order 12345", "nothing"},
		{"top up of 1,000 failed at 10:30", "top up of 1,000 failed at 10:30", "nothing"},
		{"a@b.io and 5105105105105100", "[EMAIL] and [CARD]", "card 1, email 1"},
	} {
		got, n := r.Redact(c.in)
		if got != c.want || n.String() != c.counts {
			t.Errorf("%q: %q (%s), want %q (%s)", c.in, got, n, c.want, c.counts)
		}
	}
	var none *Redactor
	if got, n := none.Redact("a@b.io"); got != "a@b.io" || len(n) != 0 {
		t.Fatalf("nil redactor changed %q", got)
	}
}

func TestRedactUserPatterns(t *testing.T) {
	pats, err := ParsePatterns([]string{"account=ACC-[0-9]{6}", "iban=\\bDE[0-9]{20}\\b"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(pats)
	if err != nil {
		t.Fatal(err)
	}
	got, n := r.Redact("move ACC-123456 to DE89370400440532013000, mail x@y.org")
	if got != "move [ACCOUNT] to [IBAN], mail [EMAIL]" || n["account"] != 1 || n["iban"] != 1 || n["email"] != 1 {
		t.Fatalf("%q %v", got, n)
	}
	for _, bad := range [][]string{{"x"}, {"=a"}, {"a=b", "a=c"}} {
		if _, err := ParsePatterns(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for name, pats := range map[string]map[string]string{"bad regexp": {"a": "("}, "empty match": {"a": "x*"}, "bad name": {"a b": "x"}} {
		if _, err := New(pats); err == nil || !strings.Contains(err.Error(), "redact") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
