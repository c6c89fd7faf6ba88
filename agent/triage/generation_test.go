package triage

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

const worked = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"

func TestWorkedAnswers(t *testing.T) {
	g := generationAnswers{}
	for _, c := range []struct {
		expected string
		want     Kind
	}{
		{worked, ""},
		{strings.Replace(worked, "<<48+24=72>>", "<<48+24=74>>", 1), PoisonArithmetic},
		{strings.Replace(worked, "#### 72", "#### 75", 1), PoisonUnworked},
		{strings.Replace(worked, "#### 72", "#### 24", 1), ""},            // a number the working reached
		{"The answer is 12.\n#### 13", ""},                                // no worked steps: nothing to check against
		{"Half is <<(10-4)/2=3>>3, then <<3*1.5=4.5>>4.5.\n#### 4.5", ""}, // parentheses, decimals
		{"It costs <<1,200*2=2,400>>2,400 dollars.\n#### 2,400", ""},      // thousands separators
		{"Cut into <<10/3=3.33>>3.33 m pieces.\n#### 3.33", ""},           // rounded results
		{"Steps <<2^3=8>>8.\n#### 9", PoisonUnworked},                     // a step that is not plain arithmetic is not judged
	} {
		k, why := g.contradicted(Failure{Expected: c.expected}, "", nil)
		if k != c.want {
			t.Errorf("%q: %q (%s), want %q", c.expected, k, why, c.want)
		}
	}
	for _, bad := range []string{"", "2+", "(1", "1/0", "a*2", "3**2"} {
		if v, ok := evalArithmetic(bad); ok {
			t.Errorf("evalArithmetic(%q) = %v, want refused", bad, v)
		}
	}
	if v, ok := evalArithmetic("-(2+3)*4-6/3"); !ok || v != -22 {
		t.Errorf("evalArithmetic = %v %v", v, ok)
	}
}

// TestWorkedAnswersOnGSM8K: on GSM8K's own training answers (where ../shared/data has
// them) the checks call at most 0.3 % poison.
func TestWorkedAnswersOnGSM8K(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "data", "math", "gsm8k", "train.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no GSM8K at %s: %v", path, err)
	}
	defer f.Close()
	tk, err := task.New("gsm8k", task.Generation, nil, nil, "exact_match")
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerationAnswers(tk, nil)
	n, flagged := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		n++
		if k, _ := g.contradicted(Failure{Input: row.Question, Expected: row.Answer}, "", nil); k != "" {
			flagged++
		}
	}
	if n < 7000 || float64(flagged) > 0.003*float64(n) {
		t.Fatalf("%d of %d genuine answers called poison", flagged, n)
	}
	t.Logf("%d of %d genuine answers called poison", flagged, n)
}
