package chat

import "testing"

func TestDbg(t *testing.T) {
	for _, src := range []string{
		`{% set us = messages | selectattr("role", "equalto", "user") | list %}{% for m in messages %}{{ m == us[-1] }}{% endfor %}`,
		`{% set us = messages | selectattr("role", "equalto", "user") | list %}{{ us }}|{{ us[-1] }}|{{ messages[1] == us[0] }}|{{ messages[1] == us[-1] }}`,
		`{% set us = messages | selectattr('role', 'equalto', 'user') | list %}{{ us }}|{{ us[-1] }}|{{ messages[1] == us[0] }}|{{ messages[1] == us[-1] }}`,
	} {
		tpl, err := parse(src, nil)
		if err != nil {
			t.Logf("%s: %v", src, err)
			continue
		}
		vars, _ := decodeVars([]byte(`{"x": true, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}`))
		out, err := tpl.execute(vars)
		t.Logf("%s => %q %v", src, out, err)
	}
}
