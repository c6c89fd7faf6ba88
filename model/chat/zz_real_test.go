package chat

import (
	"encoding/json"
	"os"
	"testing"
)

func TestRealTemplates(t *testing.T) {
	data, err := os.ReadFile("/tmp/real/cases.json")
	if err != nil {
		t.Skip()
	}
	var f struct {
		Templates map[string]string `json:"templates"`
		Cases     []jinjaCase       `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			vars, err := decodeVars(c.Vars)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			tpl, err := parse(f.Templates[c.Template], nil)
			if err == nil {
				got, err = tpl.execute(vars)
			}
			checkOutcome(t, got, err, c.Expected, c.Error)
		})
	}
}
