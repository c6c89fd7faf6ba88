package task_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/sandbox"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

func TestBundledTasksLoad(t *testing.T) {
	want := map[string]struct {
		typ                   task.Type
		labels                int
		train, val, test      int
		firstTestID, testText string
	}{
		"banking77": {task.Classification, 77, 9000, 1003, 3080, "banking77-test-0", "How do I locate my card?"},
		"clinc150":  {task.Classification, 150, 15000, 3000, 4500, "clinc150-test-0", "how would you say fly in italian"},
		"conll2003": {task.Extraction, 0, 14041, 3250, 3453, "conll2003-test-0", "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT ."},
	}
	if got := task.Bundled(); len(got) != len(want) {
		t.Fatalf("bundled %v", got)
	}
	for name, w := range want {
		tk, err := task.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Type != w.typ || len(tk.Labels) != w.labels {
			t.Fatalf("%s: type %s, %d labels", name, tk.Type, len(tk.Labels))
		}
		for split, n := range map[string]int{"train": w.train, "validation": w.val, "test": w.test} {
			exs, err := tk.Split(split)
			if err != nil {
				t.Fatal(err)
			}
			if len(exs) != n {
				t.Fatalf("%s %s: %d examples, want %d", name, split, len(exs), n)
			}
			if split == "test" && (exs[0].ID != w.firstTestID || exs[0].Text != w.testText) {
				t.Fatalf("%s test[0] = %+v", name, exs[0])
			}
		}
	}
}

func writeTask(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "task.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadRejectsBadTasks(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"name: x\ntype: sorting\nprompt: '{text}'\n", "not one of classification"},
		{"name: x\ntype: classification\nlabels: [a]\nprompt: '{text}'\n", "at least two labels"},
		{"name: x\ntype: classification\nlabels: [a, a]\nprompt: '{text}'\n", "listed twice"},
		{"name: x\ntype: classification\nlabels: [a, b]\nprompt: 'no placeholder'\n", "{text}"},
		{"name: x\ntype: classification\nlabels: [a, b]\nprompt: '{text}'\nmetric: rouge_l\n", "does not fit"},
		{"name: x\ntype: extraction\nprompt: '{text}'\n", "entity_types"},
		{"name: x\ntype: classification\nlabels: [a, b]\nprompt: '{text}'\nlabelz: []\n", "labelz"},
		{"name: x\ntype: classification\nlabels: [a, b]\nprompt: '{text}'\noutput: ' {output}'\n", "{label}"},
		{"name: x\ntype: generation\nprompt: '{text}'\nmax_new_tokens: -1\n", "max_new_tokens"},
		{"name: x\ntype: classification\nlabels: [a, b]\nprompt: '{text}'\nmultiline: true\n", "multiline is for generation"},
	} {
		_, err := task.Load(writeTask(t, c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: error %v, want one mentioning %q", c.yaml, err, c.want)
		}
	}
	if _, err := task.Load("no-such-task"); err == nil || !strings.Contains(err.Error(), "banking77") {
		t.Fatalf("unknown task: %v", err)
	}
}

func TestParseReportsBadLines(t *testing.T) {
	tk, err := task.Load(writeTask(t, "name: x\ntype: classification\nlabels: [yes, no]\nprompt: 'Q: {text}\\nA:'\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := `{"id": "a", "text": "is it?", "label": "yes"}
not json

{"id": "b", "text": "", "label": "no"}
{"id": "c", "text": "really?", "label": "maybe"}
{"text": "no id", "label": "no"}
`
	exs, bad, err := tk.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[1].ID != "line-6" || exs[0].Line != 1 {
		t.Fatalf("examples %+v", exs)
	}
	if len(bad) != 3 || bad[0].Line != 2 || bad[1].Line != 4 || bad[2].Line != 5 || !strings.Contains(bad[2].Reason, "maybe") {
		t.Fatalf("bad lines %+v", bad)
	}
	if _, _, err := tk.Parse([]byte("{}\n")); err == nil {
		t.Fatal("a file with no usable line was accepted")
	}
}

func TestTargetsRoundTrip(t *testing.T) {
	ner, err := task.Load("conll2003")
	if err != nil {
		t.Fatal(err)
	}
	ex := task.Example{Text: "Peter Blackburn visited BRUSSELS", Entities: []task.Entity{{Type: "PER", Text: "Peter Blackburn"}, {Type: "LOC", Text: "BRUSSELS"}}}
	target := ner.Target(ex)
	if target != " PER: Peter Blackburn; LOC: BRUSSELS" {
		t.Fatalf("target %q", target)
	}
	_, es, ok := ner.ParseOutput(target)
	if !ok || len(es) != 2 || es[1] != ex.Entities[1] {
		t.Fatalf("parsed %v %v", es, ok)
	}
	if _, es, ok := ner.ParseOutput(" none"); !ok || len(es) != 0 {
		t.Fatal("none")
	}
	if _, es, ok := ner.ParseOutput(" PER: Ann; DATE: Monday; garbage"); ok || len(es) != 1 {
		t.Fatalf("format errors not reported: %v %v", es, ok)
	}
	intent, _ := task.Load("banking77")
	if got, _, ok := intent.ParseOutput(" card_arrival"); !ok || got != "card_arrival" {
		t.Fatal(got)
	}
	if _, _, ok := intent.ParseOutput(" not_a_label"); ok {
		t.Fatal("unknown label accepted")
	}
}

// TestEvaluateClassification: on pioneer-nano, Evaluate's answers are the labels that
// scoring each one alone prefers, and the accuracy and confusion counts add up.
// loadNano loads the bundled pioneer-nano and its tokenizer (closed when the test ends).
func loadNano(t *testing.T) (model.CausalLM, *tokenizer.Tokenizer) {
	t.Helper()
	dir := filepath.Join("..", "..", "data", "models", "pioneer-nano")
	m, err := model.Load(dir, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return m, tok
}

func TestEvaluateClassification(t *testing.T) {
	m, tok := loadNano(t)
	tk, err := task.Load(writeTask(t, "name: x\ntype: classification\nlabels: [yes, no, maybe so]\nprompt: 'Question: {text}\\nAnswer:'\n"))
	if err != nil {
		t.Fatal(err)
	}
	exs := []task.Example{{ID: "1", Text: "Is the sky blue?", Label: "yes"}, {ID: "2", Text: "Is fire cold?", Label: "no"},
		{ID: "3", Text: "Will it rain tomorrow?", Label: "maybe so"}, {ID: "4", Text: "Are cats dogs?", Label: "no"}}
	res, err := tk.Evaluate(context.Background(), m, tok, exs, task.EvalOptions{Batch: 3, EOS: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	hits, confused := 0, 0
	for i, ex := range exs {
		prompt := mustEncode(t, tok, tk.PromptText(ex.Text), true)
		best, bestLP := "", math.Inf(-1)
		for _, l := range tk.Labels {
			sc, err := infer.Score(m, [][]int{prompt}, [][]int{append(mustEncode(t, tok, tk.LabelTarget(l), false), 0)}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if sc[0].LogProb > bestLP {
				best, bestLP = l, sc[0].LogProb
			}
		}
		p := res.Predictions[i]
		if p.Label != best || p.Correct != (best == ex.Label) {
			t.Fatalf("example %d: predicted %q (correct %v), scoring prefers %q", i, p.Label, p.Correct, best)
		}
		if p.Correct {
			hits++
		} else {
			confused++
		}
	}
	n := 0
	for _, row := range res.Confusion {
		for _, c := range row {
			n += c
		}
	}
	if res.Value != float64(hits)/4 || n != confused {
		t.Fatalf("accuracy %v with %d hits; %d confusions for %d mistakes", res.Value, hits, n, confused)
	}
}

// twoKindsOfTask are an extraction and a classification task, for the evaluation tests.
var twoKindsOfTask = []string{
	"name: x\ntype: extraction\nentity_types: [LOC]\nprompt: '{text}\\nentities:'\noutput: ' {entities}'\n",
	"name: y\ntype: classification\nlabels: [yes, no]\nprompt: '{text}\\nanswer:'\n",
}

// Inputs longer than the model's context are cut to fit rather than failing the whole
// evaluation, and batches are formed by length, so a short prompt keeps its answer (and
// its full generation budget) whatever it is batched with.
func TestEvaluateFitsLongInputs(t *testing.T) {
	m, tok := loadNano(t)
	long := strings.Repeat("the quick brown fox jumps over the lazy dog near Paris ", 40)
	for _, src := range twoKindsOfTask {
		tk, err := task.Load(writeTask(t, src))
		if err != nil {
			t.Fatal(err)
		}
		exs := []task.Example{{ID: "long", Text: long, Label: "no"}, {ID: "short", Text: "We flew to Paris.", Label: "yes"}}
		o := task.EvalOptions{Batch: 2, MaxNewTokens: 48, EOS: []int{0}}
		res, err := tk.Evaluate(context.Background(), m, tok, exs, o)
		if err != nil {
			t.Fatalf("%s: %v", tk.Name, err)
		}
		if res.Truncated != 1 || res.Predictions[0].ID != "long" || res.Predictions[1].ID != "short" {
			t.Fatalf("%s: truncated %d, predictions %q %q", tk.Name, res.Truncated, res.Predictions[0].ID, res.Predictions[1].ID)
		}
		alone, err := tk.Evaluate(context.Background(), m, tok, exs[1:], o)
		if err != nil {
			t.Fatal(err)
		}
		if alone.Predictions[0].Output != res.Predictions[1].Output {
			t.Fatalf("%s: the short input's answer changed with its batch: %q alone, %q batched", tk.Name, alone.Predictions[0].Output, res.Predictions[1].Output)
		}
	}
}

// TestEvaluateSets: sets evaluated together get what Evaluate gives each alone (value,
// answers, truncation), the model runs once per distinct input however many sets hold
// it (the progress count), an example in two sets is scored against each set's own
// label, and an empty set's result is nil.
func TestEvaluateSets(t *testing.T) {
	m, tok := loadNano(t)
	long := strings.Repeat("the quick brown fox jumps over the lazy dog near Paris ", 40)
	for _, src := range twoKindsOfTask {
		tk, err := task.Load(writeTask(t, src))
		if err != nil {
			t.Fatal(err)
		}
		a := []task.Example{{ID: "a1", Text: "We flew to Paris.", Label: "yes", Entities: []task.Entity{{Text: "Paris", Type: "LOC"}}},
			{ID: "a2", Text: long, Label: "no"}, {ID: "a3", Text: "Is fire cold?", Label: "no"}}
		b := []task.Example{{ID: "b1", Text: "Is fire cold?", Label: "yes"}, {ID: "b2", Text: "Rome is old.", Label: "yes", Entities: []task.Entity{{Text: "Rome", Type: "LOC"}}},
			{ID: "b3", Text: "We flew to Paris.", Label: "no"}}
		ran := 0
		o := task.EvalOptions{Batch: 2, MaxNewTokens: 16, EOS: []int{0}, Progress: func(done, total int) { ran = total }}
		rs, err := tk.EvaluateSets(context.Background(), m, tok, [][]task.Example{a, nil, b}, o)
		if err != nil {
			t.Fatalf("%s: %v", tk.Name, err)
		}
		if len(rs) != 3 || rs[1] != nil || ran != 4 {
			t.Fatalf("%s: %d results (the empty set's %v), %d inputs run, want 3, nil and 4", tk.Name, len(rs), rs[1], ran)
		}
		o.Progress = nil
		for k, set := range [][]task.Example{a, b} {
			alone, err := tk.Evaluate(context.Background(), m, tok, set, o)
			if err != nil {
				t.Fatal(err)
			}
			got := rs[2*k]
			if got.Value != alone.Value || got.Truncated != alone.Truncated || len(got.Predictions) != len(set) {
				t.Fatalf("%s, set %d: value %v truncated %d, alone %v and %d", tk.Name, k, got.Value, got.Truncated, alone.Value, alone.Truncated)
			}
			for i := range set {
				if !reflect.DeepEqual(got.Predictions[i], alone.Predictions[i]) {
					t.Fatalf("%s, set %d, example %d: %+v together, %+v alone", tk.Name, k, i, got.Predictions[i], alone.Predictions[i])
				}
			}
		}
		if tk.Type == "classification" && rs[0].Predictions[2].Correct == rs[2].Predictions[0].Correct {
			t.Fatalf("one answer to %q scored the same against labels no and yes", a[2].Text)
		}
	}
}

// TestEntityTypeScores: each entity's score for its own type is the log-probability of
// exactly the tokens the training target has for it (the target tokenized whole, split
// after the entities before it), and the types come in the task's order.
func TestEntityTypeScores(t *testing.T) {
	m, tok := loadNano(t)
	tk, err := task.Load("conll2003")
	if err != nil {
		t.Fatal(err)
	}
	exs := []task.Example{
		{ID: "a", Text: "EU rejects German call to boycott British lamb .", Entities: []task.Entity{{Type: "ORG", Text: "EU"}, {Type: "MISC", Text: "German"}, {Type: "MISC", Text: "British"}}},
		{ID: "b", Text: "Peter Blackburn", Entities: []task.Entity{{Type: "PER", Text: "Peter Blackburn"}}},
		{ID: "c", Text: "Nothing here .", Entities: nil},
	}
	scores, err := tk.EntityTypeScores(context.Background(), m, tok, exs, task.EvalOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 3 || len(scores[0]) != 3 || len(scores[1]) != 1 || len(scores[2]) != 0 {
		t.Fatalf("shape %d/%v", len(scores), scores)
	}
	for i, ex := range exs {
		prompt := mustEncode(t, tok, tk.PromptText(ex.Text), true)
		target := mustEncode(t, tok, tk.Target(ex), false)
		at := 0 // target tokens before entity k
		for k, e := range ex.Entities {
			head := mustEncode(t, tok, tk.Target(task.Example{Entities: ex.Entities[:k+1]}), false)
			if !slices.Equal(head, target[:len(head)]) {
				t.Fatalf("%s: the target's tokens do not split after entity %d", ex.ID, k)
			}
			if k > 0 { // the separator ";" belongs to the context, the space to the entity
				at++
			}
			ref, err := infer.Score(m, [][]int{append(append([]int(nil), prompt...), target[:at]...)}, [][]int{head[at:]}, 1)
			if err != nil {
				t.Fatal(err)
			}
			gold := slices.Index(tk.EntityTypes, e.Type)
			if got := scores[i][k][gold]; math.Abs(got-ref[0].LogProb) > 1e-3 {
				t.Errorf("%s entity %d (%s): scored %.5f, the target's own tokens %.5f", ex.ID, k, e.Text, got, ref[0].LogProb)
			}
			for j, s := range scores[i][k] {
				if j != gold && s == scores[i][k][gold] {
					t.Errorf("%s entity %d: types %d and %d score the same", ex.ID, k, j, gold)
				}
			}
			at = len(head)
		}
	}
	if _, err := tk.EntityTypeScores(context.Background(), m, tok, exs[:1], task.EvalOptions{}); err != nil {
		t.Fatal(err)
	}
	cls, _ := task.Load("clinc150")
	if _, err := cls.EntityTypeScores(context.Background(), m, tok, exs, task.EvalOptions{}); err == nil {
		t.Fatal("entity type scores for a classification task")
	}
}

func mustEncode(t *testing.T, tok model.Tokenizer, text string, special bool) []int {
	t.Helper()
	ids, err := tok.Encode(text, special)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestTaskFilesStayInTheFolder: a split that is a link out of the task's folder, or a
// path that climbs out of it, is not read.
func TestTaskFilesStayInTheFolder(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.jsonl")
	if err := os.WriteFile(secret, []byte(`{"id": "s", "text": "secret", "label": "a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, setup := range map[string]func(dir string) string{
		"symlink": func(dir string) string {
			if err := os.Symlink(secret, filepath.Join(dir, "train.jsonl")); err != nil {
				t.Fatal(err)
			}
			return "train.jsonl"
		},
		"dotdot": func(dir string) string {
			rel, err := filepath.Rel(dir, secret)
			if err != nil {
				t.Fatal(err)
			}
			return rel
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			train := setup(dir)
			yaml := "name: x\ntype: classification\nlabels: [a, b]\nprompt: \"{text}\"\ndata: {train: " + train + ", validation: v.jsonl, test: v.jsonl}\n"
			if err := os.WriteFile(filepath.Join(dir, "task.yaml"), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			tk, err := task.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if exs, err := tk.Split("train"); err == nil {
				t.Fatalf("read %d examples from outside the task's folder", len(exs))
			}
		})
	}
}

// TestScoreEntities checks the entity metric on completions written by hand:
// entity-level micro scores, types outside the set and parts without "TYPE: " as format
// errors, "none" as no entities.
func TestScoreEntities(t *testing.T) {
	tk, err := task.New("ner", task.Extraction, nil, []string{"PER", "LOC", "ORG"}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{"PER: Angela Merkel; LOC: Berlin", "none", "ORG Foo", " PER: Bob; XYZ: q"}
	refs := []task.Example{{Entities: []task.Entity{{Type: "PER", Text: "Angela Merkel"}, {Type: "LOC", Text: "Paris"}}},
		{Entities: []task.Entity{{Type: "LOC", Text: "Rome"}}}, {}, {Entities: []task.Entity{{Type: "PER", Text: "Bob"}}}}
	res, err := tk.Score(got, refs)
	if err != nil {
		t.Fatal(err)
	}
	// TP: Angela Merkel, Bob; FP: Berlin; FN: Paris, Rome.
	bad := 0
	for _, p := range res.Predictions {
		if !p.FormatOK {
			bad++
		}
	}
	e := res.Entities
	for name, c := range map[string][2]float64{"precision": {e.Precision, 2.0 / 3}, "recall": {e.Recall, 0.5}, "f1": {e.F1, 4.0 / 7},
		"value": {res.Value, 4.0 / 7}, "format errors": {float64(bad), 2}} {
		if d := c[0] - c[1]; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if _, err := tk.Score(got, refs[:2]); err == nil {
		t.Error("4 completions scored against 2 references")
	}
}

func TestLabelLike(t *testing.T) {
	tk, err := task.New("t", task.Classification, []string{"book_flight", "Weather"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := tk.LabelLike("  weather "); !ok || l != "Weather" {
		t.Errorf("LabelLike(weather) = %q, %v", l, ok)
	}
	if l, ok := tk.LabelLike("timer"); ok {
		t.Errorf("LabelLike(timer) = %q, want none", l)
	}
}

func TestTextOfUndoesPromptText(t *testing.T) {
	tk, err := task.New("t", task.Classification, []string{"a", "b"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	tk.Prompt = "Message: {text}\nintent:"
	for _, s := range []string{"where is my card", "", "intent: twice\nintent:"} {
		if got, ok := tk.TextOf(tk.PromptText(s)); !ok || got != s {
			t.Errorf("TextOf(PromptText(%q)) = %q, %v", s, got, ok)
		}
	}
	for _, p := range []string{"where is my card", "Message: hi", "hi\nintent:", "Message:\nintent"} {
		if got, ok := tk.TextOf(p); ok {
			t.Errorf("TextOf(%q) = %q: not the task's prompt", p, got)
		}
	}
}

// TestScoreFinalAnswer: with final_answer a worked solution is right when its final
// answer is the reference's, however the working differs.
func TestScoreFinalAnswer(t *testing.T) {
	tk, err := task.New("math", task.Generation, nil, nil, "final_answer")
	if err != nil {
		t.Fatal(err)
	}
	refs := []task.Example{{Output: "48/2 = <<48/2=24>>24, 48+24 = <<48+24=72>>72\n#### 72"}, {Output: "#### 1,200"}, {Output: "#### 5"}}
	got := []string{"She sold 24 in May, so 72 in all.\n#### 72", "The answer is $1200.", "#### 6"}
	res, err := tk.Score(got, refs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Value < 2.0/3-1e-9 || res.Value > 2.0/3+1e-9 || !res.Predictions[0].Correct || !res.Predictions[1].Correct || res.Predictions[2].Correct {
		t.Fatalf("final_answer %v, predictions %+v", res.Value, res.Predictions)
	}
}

// TestTaskAnswerBudget: a task's max_new_tokens bounds its generated answers where the
// evaluation sets no budget of its own, and is part of its fingerprint.
func TestTaskAnswerBudget(t *testing.T) {
	base := "name: x\ntype: generation\nprompt: '{text}'\n"
	plain, err := task.Load(writeTask(t, base))
	if err != nil {
		t.Fatal(err)
	}
	long, err := task.Load(writeTask(t, base+"max_new_tokens: 256\n"))
	if err != nil {
		t.Fatal(err)
	}
	if long.MaxNewTokens != 256 || plain.MaxNewTokens != 0 {
		t.Fatalf("budgets %d and %d", long.MaxNewTokens, plain.MaxNewTokens)
	}
	a, err := plain.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	b, err := long.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("the answer budget is not part of the fingerprint")
	}
	// On pioneer-nano: answers of at most 3 tokens with the task's budget of 3, longer
	// ones without it, and an evaluation's own budget first.
	m, tok := loadNano(t)
	short, err := task.Load(writeTask(t, base+"max_new_tokens: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	exs := []task.Example{{ID: "1", Text: "First Citizen: Before we proceed any further, hear me", Output: "x"}}
	longest := func(tk *task.Task, o task.EvalOptions) int {
		o.MultiLine = true // (nano's lines are short; the budget is what is tested)
		res, err := tk.Evaluate(context.Background(), m, tok, exs, o)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.Encode(" "+res.Predictions[0].Output, false)
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	if n := longest(short, task.EvalOptions{}); n > 4 { // (the space before the answer may take a token of its own)
		t.Errorf("an answer of %d tokens under a budget of 3", n)
	}
	if n := longest(plain, task.EvalOptions{}); n <= 4 {
		t.Errorf("without a budget the answer has only %d tokens: the test shows nothing", n)
	}
	if n := longest(short, task.EvalOptions{MaxNewTokens: 10}); n <= 4 {
		t.Errorf("the evaluation's own budget of 10 gave %d tokens", n)
	}
}

// TestScorePassAtOne: with pass_at_1 an answer is a program, right when the example's
// tests pass on it in the sandbox (a wrong one, a broken one and one that never ends
// are wrong); an example without tests is refused; a multi-line task's answers run
// past the first newline, and multiline is part of the fingerprint.
func TestScorePassAtOne(t *testing.T) {
	base := "name: code\ntype: generation\nprompt: '{text}\\ncode:'\nmetric: pass_at_1\n"
	tk, err := task.Load(writeTask(t, base+"multiline: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []string{"assert add(1, 2) == 3", "assert add(0, 0) == 0"}
	refs := []task.Example{{ID: "a", Output: "def add(a, b):\n    return a + b", Tests: tests}, {ID: "b", Output: "x", Tests: tests},
		{ID: "c", Output: "x", Tests: tests}, {ID: "d", Output: "x", Tests: tests}}
	got := []string{" def add(a, b):\n    return b + a\n", " def add(a, b):\n    return a * b", " def add(a, b) return a", " def add(a, b):\n    while True: pass"}
	res, err := tk.Score(got, refs)
	if errors.Is(err, sandbox.ErrUnavailable) {
		t.Skipf("no sandbox on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Value != 0.25 || !res.Predictions[0].Correct || res.Predictions[1].Correct || res.Predictions[2].Correct || res.Predictions[3].Correct {
		t.Fatalf("pass_at_1 %v, predictions %+v", res.Value, res.Predictions)
	}
	if exs, bad, err := tk.Parse([]byte(`{"id": "n", "text": "add two numbers", "output": "def add(a, b): return a + b"}` + "\n")); err == nil || len(exs) != 0 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "tests") {
		t.Fatalf("an example without tests: %v %v %v", exs, bad, err)
	}
	plain, err := task.Load(writeTask(t, base))
	if err != nil {
		t.Fatal(err)
	}
	a, err := plain.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	b, err := tk.Fingerprint()
	if err != nil || a == b || plain.MultiLine || !tk.MultiLine {
		t.Fatalf("multiline %v/%v, fingerprints %s %s %v", plain.MultiLine, tk.MultiLine, a, b, err)
	}
}
