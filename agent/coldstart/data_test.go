package coldstart_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
)

// TestGatherMapsAndCleans: labels mapped onto the task's, exact duplicates and
// conflicting duplicates left out, and an input of any dataset's test split never in
// the pool.
func TestGatherMapsAndCleans(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("label\ttext\n")
	for i := range 20 {
		fmt.Fprintf(&b, "ham\tsee you at %d tonight\nspam\tfree prize number %d, text WIN\n", i, i)
	}
	b.WriteString("ham\tSee you at 3 tonight!\n")      // a duplicate up to case and punctuation
	b.WriteString("spam\tsee you at 4 tonight\n")      // the same input with another label
	b.WriteString("ham\tthe exam paper leaked here\n") // in another dataset's test split
	write(t, filepath.Join(root, "sms/messages.tsv"), b.String())
	write(t, filepath.Join(root, "other/test.csv"), "text,label\nThe exam paper leaked here,x\nsomething else entirely,y\n")
	write(t, filepath.Join(root, "other/train.csv"), "text,label\nfirst training line,x\nsecond training line,y\nthird line here,x\nfourth line here,y\n")
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := coldstart.PlanTask("classify text messages as spam or not", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sources) != 1 || p.Sources[0].Dataset != "sms" {
		t.Fatalf("sources %+v\n%s", p.Sources, strings.Join(p.Reasons, "\n"))
	}
	pool, err := coldstart.Gather(p, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(pool.Examples) != 39 || pool.From["sms"] != 39 || pool.Dropped["duplicate input (same answer)"] != 1 ||
		pool.Dropped["duplicate input with another answer"] != 2 || pool.Dropped["input in a catalog test split"] != 1 {
		t.Fatalf("pool %d, %+v", len(pool.Examples), pool)
	}
	for _, ex := range pool.Examples {
		if ex.Label != "spam" && ex.Label != "not spam" || !strings.HasPrefix(ex.ID, "sms/") {
			t.Fatalf("example %+v: label not mapped or id not the source's", ex)
		}
		if strings.Contains(ex.Text, "see you at 4 ") {
			t.Fatalf("a conflicting duplicate stayed: %+v", ex)
		}
	}
}

// TestFreezeEvalIsBalancedAndApart: the evaluation set covers every label (with
// boundary cases), shares no input with the training data, and takes the training
// data's near-copies of its inputs out.
func TestFreezeEvalIsBalancedAndApart(t *testing.T) {
	var pool []task.Example
	for i := range 40 {
		pool = append(pool, task.Example{ID: fmt.Sprintf("a%d", i), Text: fmt.Sprintf("my card number %d has not arrived in the post", i), Label: "card"},
			task.Example{ID: fmt.Sprintf("b%d", i), Text: fmt.Sprintf("please reset the pin of account %d today", i), Label: "pin"})
	}
	pool = append(pool, task.Example{ID: "x", Text: "my card number 7 has not arrived in the post !!", Label: "card"}) // a near copy
	es, train, err := coldstart.FreezeEval(task.Classification, []string{"card", "pin"}, pool, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es.Examples) != 20 || es.Make["positive:card"]+es.Make["boundary:card"] != 10 || es.Make["boundary:pin"] == 0 {
		t.Fatalf("evaluation set %d: %v", len(es.Examples), es.Make)
	}
	in := map[string]bool{}
	for _, ex := range es.Examples {
		in[ex.Text] = true
	}
	for _, ex := range train {
		if in[ex.Text] {
			t.Fatalf("%q is in both", ex.Text)
		}
	}
	if len(train)+len(es.Examples)+es.NearDuplicates != len(pool) {
		t.Fatalf("train %d + eval %d + near-duplicates %d != pool %d", len(train), len(es.Examples), es.NearDuplicates, len(pool))
	}
	// Whether the near copy's twin was drawn decides where it went; either way no training
	// input is that close to an evaluation one (checked against the twin).
	if in["my card number 7 has not arrived in the post"] {
		for _, ex := range train {
			if ex.ID == "x" {
				t.Fatal("the near copy of an evaluation input stayed in training")
			}
		}
	}

	// Extraction: negatives and every type.
	var ner []task.Example
	for i := range 30 {
		ner = append(ner, task.Example{ID: fmt.Sprintf("p%d", i), Text: fmt.Sprintf("Ann %d met Bob", i), Entities: []task.Entity{{Type: "PER", Text: "Ann"}}},
			task.Example{ID: fmt.Sprintf("l%d", i), Text: fmt.Sprintf("rain in Oslo on day %d", i), Entities: []task.Entity{{Type: "LOC", Text: "Oslo"}}},
			task.Example{ID: fmt.Sprintf("n%d", i), Text: fmt.Sprintf("nothing to see on page %d", i)})
	}
	es, _, err = coldstart.FreezeEval(task.Extraction, nil, ner, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if es.Make["negative"] != 3 || es.Make["positive:PER"] == 0 || es.Make["positive:LOC"] == 0 {
		t.Fatalf("extraction evaluation set: %v", es.Make)
	}
	if _, _, err := coldstart.FreezeEval(task.Generation, nil, ner[:2], 20, 1); err == nil {
		t.Fatal("two examples made an evaluation set and a training set")
	}
}

// TestPlanToTaskFolder: description → plan → pool → frozen evaluation set → a task
// folder that loads, whose splits are those parts and share no input.
func TestPlanToTaskFolder(t *testing.T) {
	c := smallCatalog(t)
	for _, desc := range []string{"classify customer text messages as spam or not", "pull out the people, companies and places in news sentences",
		"summarise a chat conversation in one sentence"} {
		p, err := coldstart.PlanTask(desc, nil, c)
		if err != nil {
			t.Fatal(err)
		}
		pool, err := coldstart.Gather(p, c)
		if err != nil {
			t.Fatalf("%q: %v", desc, err)
		}
		es, train, err := coldstart.FreezeEval(p.Task.Type, p.Task.Labels, pool.Examples, 6, 1)
		if err != nil {
			t.Fatalf("%q: %v", desc, err)
		}
		dev, train := coldstart.HoldDev(train, 100, 1)
		tk, err := coldstart.WriteTask(filepath.Join(t.TempDir(), "task"), p, train, dev, es)
		if err != nil {
			t.Fatalf("%q: %v", desc, err)
		}
		tr, err := tk.Split("train")
		if err != nil {
			t.Fatal(err)
		}
		_, va, ev, err := tk.Splits()
		if err != nil {
			t.Fatal(err)
		}
		if len(tr) != len(train) || len(va) != len(dev) || len(va) == 0 || len(ev) != len(es.Examples) || len(ev) == 0 || tk.Type != p.Task.Type || tk.Metric != p.Task.Metric {
			t.Fatalf("%q: task %s %s, train %d (want %d), dev %d (want %d), eval %d (want %d)", desc, tk.Type, tk.Metric, len(tr), len(train), len(va), len(dev), len(ev), len(es.Examples))
		}
		split := map[string]string{}
		for name, exs := range map[string][]task.Example{"train": tr, "validation": va, "test": ev} {
			for _, ex := range exs {
				if s, ok := split[ex.Text]; ok && s != name {
					t.Fatalf("%q: %q is in %s and %s", desc, ex.Text, s, name)
				}
				split[ex.Text] = name
			}
		}
	}
}

// TestWorkedAnswersOnOneLine: a generation task's multi-line worked answers become one
// line each (a task's answer is one line), and the task folder's answer budget is set
// from the training answers (the format's 64 at least).
func TestWorkedAnswersOnOneLine(t *testing.T) {
	c := smallCatalog(t)
	p, err := coldstart.PlanTask("answer grade-school math word problems with a number", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := coldstart.Gather(p, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range pool.Examples {
		if strings.Contains(ex.Output, "\n") || !strings.Contains(ex.Output, " #### ") {
			t.Fatalf("answer %q: want the worked answer on one line", ex.Output)
		}
	}
	tk := freezeAndLoad(t, p, pool.Examples)
	if tk.MaxNewTokens != 64 || tk.Metric != "final_answer" {
		t.Fatalf("task %s: max_new_tokens %d, metric %s; want 64 (short answers) and final_answer", tk.Name, tk.MaxNewTokens, tk.Metric)
	}
	long := make([]task.Example, len(pool.Examples))
	for i, ex := range pool.Examples {
		ex.Output = strings.Repeat("step ", 100) + ex.Output
		long[i] = ex
	}
	if tk = freezeAndLoad(t, p, long); tk.MaxNewTokens < 200 || tk.MaxNewTokens > 512 {
		t.Fatalf("answers of about 105 words: max_new_tokens %d, want about twice that", tk.MaxNewTokens)
	}
}

// TestCodeWithTests: a description asking for code, on a dataset whose answers are
// programs with tests, plans a multi-line task scored by pass_at_1; its programs keep
// their lines and their tests.
func TestCodeWithTests(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, `{"text": "Write a function that adds %d to a number.", "code": "def add_%d(x):\r\n    return x + %d", "task_id": %d, "test_list": ["assert add_%d(1) == %d", "assert add_%d(0) == %d"]}`+"\n",
			i, i, i, i, i, i+1, i, i)
	}
	write(t, filepath.Join(root, "code", "train.jsonl"), b.String())
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := coldstart.PlanTask("write a python function for a short programming problem", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Generation || p.Task.Metric != "pass_at_1" || !p.Task.MultiLine || len(p.Sources) != 1 || !p.Sources[0].Tests {
		t.Fatalf("plan %+v, sources %+v\n%s", p.Task, p.Sources, strings.Join(p.Reasons, "\n"))
	}
	pool, err := coldstart.Gather(p, c)
	if err != nil {
		t.Fatal(err)
	}
	ex := pool.Examples[0]
	if !strings.Contains(ex.Output, "\n    return x") || len(ex.Tests) != 2 || !strings.HasPrefix(ex.Tests[0], "assert add_") {
		t.Fatalf("example %+v: want the program on its lines, with its two tests", ex)
	}
	tk := freezeAndLoad(t, p, pool.Examples)
	if !tk.MultiLine || tk.Metric != "pass_at_1" || tk.MaxNewTokens != 64 {
		t.Fatalf("task: multiline %v, metric %s, budget %d", tk.MultiLine, tk.Metric, tk.MaxNewTokens)
	}
	// The same description on data without tests is not scored by running code.
	write(t, filepath.Join(root, "code", "train.jsonl"), strings.ReplaceAll(b.String(), `"test_list"`, `"notes"`))
	if c, err = catalog.Open(root); err != nil {
		t.Fatal(err)
	}
	if p, err = coldstart.PlanTask("write a python function for a short programming problem", nil, c); err != nil || p.Task.Metric == "pass_at_1" || p.Task.MultiLine {
		t.Fatalf("code without tests: %+v %v", p.Task, err)
	}
}

// freezeAndLoad writes the plan's task folder from exs (a frozen set of 3) and loads it.
func freezeAndLoad(t *testing.T, p *coldstart.Plan, exs []task.Example) *task.Task {
	t.Helper()
	dir := t.TempDir()
	if _, _, _, err := coldstart.Freeze(dir, p, exs, 3, 1); err != nil {
		t.Fatal(err)
	}
	tk, err := task.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestAddUser: the user's examples join the pool under their own source; one whose
// input a catalog example has replaces it (the user's answer wins); an empty one, one in
// a catalog test split and one with a label the task lacks are left out, counted.
func TestAddUser(t *testing.T) {
	p := &coldstart.Plan{Task: coldstart.TaskSpec{Name: "spam", Type: task.Classification, Labels: []string{"spam", "ham"}}}
	pool := &coldstart.Pool{From: map[string]int{"sms": 2}, Dropped: map[string]int{},
		Examples: []task.Example{{ID: "sms/1", Text: "Win a prize now!", Label: "ham"}, {ID: "sms/2", Text: "see you at 6", Label: "ham"}}}
	user := []task.Example{{Text: "win a PRIZE now", Label: "spam"}, {Text: "claim your free gift", Label: "spam"}, {Text: " "},
		{Text: "the held out one", Label: "spam"}, {Text: "what is this", Label: "maybe"}}
	pool.AddUser(p, user, map[string]bool{"the held out one": true})
	if len(pool.Examples) != 3 || pool.Examples[0].ID != "examples/1" || pool.Examples[0].Label != "spam" || pool.Examples[2].ID != "examples/2" {
		t.Fatalf("pool %+v", pool.Examples)
	}
	if pool.From["sms"] != 1 || pool.From["examples"] != 2 || pool.Dropped["no text or answer"] != 1 ||
		pool.Dropped["input in a catalog test split"] != 1 || pool.Dropped["label not mapped onto the task's"] != 1 {
		t.Fatalf("from %v, dropped %v", pool.From, pool.Dropped)
	}
}
