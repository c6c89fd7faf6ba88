package triage

import (
	"bufio"
	"encoding/json"
	"fmt"
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

	// Grounding, its limit set by the first 2,000 answers, on the others: their own
	// answers, and each given the next problem's answer.
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	var rows []task.Example
	sc = bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, task.Example{Text: row.Question, Output: row.Answer})
	}
	g = newGenerationAnswers(tk, rows[:2000])
	rest := rows[2000:]
	alarms, caught := 0, 0
	for i, ex := range rest {
		if k, _ := g.contradicted(Failure{Input: ex.Text, Expected: ex.Output}, ex.Text, nil); k != "" {
			alarms++
		}
		if k, _ := g.contradicted(Failure{Input: ex.Text, Expected: rest[(i+1)%len(rest)].Output}, ex.Text, nil); k != "" {
			caught++
		}
	}
	if float64(alarms) > 0.02*float64(len(rest)) || float64(caught) < 0.95*float64(len(rest)) {
		t.Fatalf("grounding: %d of %d genuine answers called poison, %d of %d swapped answers caught", alarms, len(rest), caught, len(rest))
	}
	t.Logf("grounding: %d of %d genuine answers called poison, %d of %d swapped answers caught", alarms, len(rest), caught, len(rest))
}

// TestGroundingCalibration: an expected answer that shares almost nothing with its input
// (another input's answer) is poison once enough labelled answers set the limit; with
// too few, nothing is judged.
func TestGroundingCalibration(t *testing.T) {
	tk, err := task.New("sums", task.Generation, nil, nil, "exact_match")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"Tom", "Ana", "Liu", "Omar", "Greta", "Ravi", "Noor", "Kofi"}
	things := []string{"apples", "marbles", "stamps", "pencils", "shells", "cards", "coins", "books"}
	problem := func(i int) task.Example {
		n, th, a, b := names[i%len(names)], things[(i/len(names))%len(things)], 3+i, 5+2*i
		return task.Example{
			Text:   fmt.Sprintf("%s has %d %s and gets %d more. How many %s does %s have now?", n, a, th, b, th, n),
			Output: fmt.Sprintf("%s has %d+%d=<<%d+%d=%d>>%d %s.\n#### %d", n, a, b, a, b, a+b, a+b, th, a+b),
		}
	}
	var pool []task.Example
	for i := range 64 {
		pool = append(pool, problem(i))
	}
	g := newGenerationAnswers(tk, pool).(generationAnswers)
	if g.minGrounding <= 0 {
		t.Fatalf("no grounding limit from %d labelled answers", len(pool))
	}
	own, other := problem(70), problem(77+8) // another name, thing and numbers
	if k, why := g.contradicted(Failure{Input: own.Text, Expected: own.Output}, own.Text, nil); k != "" {
		t.Errorf("its own answer: %s (%s)", k, why)
	}
	if k, why := g.contradicted(Failure{Input: own.Text, Expected: other.Output}, own.Text, nil); k != PoisonUnrelated {
		t.Errorf("another problem's answer: %q (%s), want %s", k, why, PoisonUnrelated)
	}
	few := newGenerationAnswers(tk, pool[:minCalibration-1]).(generationAnswers)
	if k, _ := few.contradicted(Failure{Input: own.Text, Expected: other.Output}, own.Text, nil); k != "" || few.minGrounding != 0 {
		t.Errorf("with %d labelled answers: %q, limit %g; want no judgement", minCalibration-1, k, few.minGrounding)
	}
}

// TestNumbersFromInput: where the labelled answers take their numbers from their inputs
// (summaries), an answer with a number its input lacks is poison; where they compute
// them (sums), nothing is judged.
func TestNumbersFromInput(t *testing.T) {
	tk, err := task.New("summaries", task.Generation, nil, nil, "rouge_l")
	if err != nil {
		t.Fatal(err)
	}
	var summaries, sums []task.Example
	for i := range minCalibration {
		n := 3 + i
		summaries = append(summaries, task.Example{
			Text:   fmt.Sprintf("Ann: shall we meet at %d:30?\nBob: yes, bring two friends and %d chairs", n, 2*n),
			Output: fmt.Sprintf("Ann and Bob meet at %d.30; Bob brings 2 friends and %d chairs.", n, 2*n)})
		sums = append(sums, task.Example{Text: fmt.Sprintf("Ann has %d apples and buys %d more.", n, n+1),
			Output: fmt.Sprintf("Ann has %d apples.", 2*n+1)})
	}
	g := newGenerationAnswers(tk, summaries).(generationAnswers)
	if !g.numbersFromInput {
		t.Fatal("summaries whose numbers all come from their dialogues: the check is off")
	}
	in := "Cal: the train leaves at 08:15, platform four\nDee: thanks"
	for _, c := range []struct {
		expected string
		want     Kind
	}{
		{"Cal's train leaves at 8.15 from platform 4.", ""}, // leading zeros, number words
		{"Cal's train leaves at 8.15 from platform 5.", PoisonNumberNotInInput},
		{"Cal's train leaves at 9.15 from platform four.", PoisonNumberNotInInput},
		{"Cal tells Dee about the train.", ""},
	} {
		if k, why := g.contradicted(Failure{Input: in, Expected: c.expected}, in, nil); k != c.want {
			t.Errorf("%q: %q (%s), want %q", c.expected, k, why, c.want)
		}
	}
	if g := newGenerationAnswers(tk, sums).(generationAnswers); g.numbersFromInput {
		t.Fatal("answers that compute their numbers: the check is on")
	}
	if g := newGenerationAnswers(tk, summaries[:minNumberAnswers-1]).(generationAnswers); g.numbersFromInput {
		t.Fatalf("%d answers with numbers are too few to measure the task by, and the check is on", minNumberAnswers-1)
	}
}
