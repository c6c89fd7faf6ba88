package coldstart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// smallCatalog: a spam collection (ham/spam), support intents, news sentences with
// entities, chat summaries and maths word problems, each with a line in an index file.
func smallCatalog(t *testing.T) *catalog.Catalog {
	root := t.TempDir()
	write(t, filepath.Join(root, "SOURCES.md"), "- SMS spam collection — `sms/` — text messages labelled ham or spam.\n"+
		"- Support intents — `support/` — customer messages to a bank and their intents.\n"+
		"- News entities — `news/` — newswire sentences tagged with person, organisation and location names.\n"+
		"- Chat summaries — `chats/` — chat conversations, each with a one-sentence summary.\n"+
		"- Maths — `maths/` — grade-school maths word problems with worked answers.\n")
	var sms, sup, chats, maths strings.Builder
	sms.WriteString("label\ttext\n")
	sup.WriteString("text,intent\n")
	for i := range 10 {
		fmt.Fprintf(&sms, "ham\tsee you at %d\nspam\tfree prize number %d, text WIN\n", i, i)
		fmt.Fprintf(&sup, "my card %d has not arrived,card_arrival\nreset pin %d please,change_pin\n", i, i)
		fmt.Fprintf(&chats, `{"dialogue": "Ann: lunch at %d? Bob: sure", "summary": "Ann and Bob will have lunch at %d."}`+"\n", i, i)
		fmt.Fprintf(&maths, `{"question": "Tom has %d apples and buys 2. How many now?", "answer": "%d + 2 = %d\n#### %d"}`+"\n", i, i, i+2, i+2)
	}
	write(t, filepath.Join(root, "sms/messages.tsv"), sms.String())
	write(t, filepath.Join(root, "support/train.csv"), sup.String())
	write(t, filepath.Join(root, "chats/train.jsonl"), chats.String())
	write(t, filepath.Join(root, "maths/train.jsonl"), maths.String())
	var news strings.Builder
	for i := range 6 {
		fmt.Fprintf(&news, "EU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC\ncall NN O\n%d CD O\n\nPeter NNP B-PER\nBlackburn NNP I-PER\nvisited VBD O\nLondon NNP B-LOC\n%d CD O\n\nit PRP O\nrained VBD O\n%d CD O\n\n", i, i, i)
	}
	write(t, filepath.Join(root, "news/train.txt"), news.String())
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Datasets) != 5 {
		t.Fatalf("%d datasets, skipped %v", len(c.Datasets), c.Skipped)
	}
	return c
}

func sources(p *coldstart.Plan) []string {
	var out []string
	for _, s := range p.Sources {
		out = append(out, s.Dataset)
	}
	return out
}

// TestPlannerReadsTheDescription: the type, the labels or entity types, the metric and
// the data each description asks for, with the datasets' labels mapped onto the task's.
func TestPlannerReadsTheDescription(t *testing.T) {
	c := smallCatalog(t)

	p, err := coldstart.PlanTask("classify customer text messages as spam or not", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Classification || !slices.Equal(p.Task.Labels, []string{"spam", "not spam"}) || p.Task.Metric != "accuracy" ||
		!slices.Equal(sources(p), []string{"sms"}) || p.Sources[0].Map["ham"] != "not spam" || p.Sources[0].Map["spam"] != "spam" {
		t.Errorf("spam: %+v %+v\n%s", p.Task, p.Sources, strings.Join(p.Reasons, "\n"))
	}

	p, err = coldstart.PlanTask("pull out the people, companies and places in news sentences", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Extraction || !slices.Equal(p.Task.EntityTypes, []string{"PER", "ORG", "LOC"}) || p.Task.Metric != "entity_f1" ||
		!slices.Equal(sources(p), []string{"news"}) || p.Sources[0].Unmapped["MISC"] != 6 {
		t.Errorf("entities: %+v %+v\n%s", p.Task, p.Sources, strings.Join(p.Reasons, "\n"))
	}

	p, err = coldstart.PlanTask("summarise a chat conversation in one sentence", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Generation || p.Task.Metric != "rouge_l" || p.Task.Prompt != "{text}\nsummary:" || !slices.Equal(sources(p), []string{"chats"}) {
		t.Errorf("summaries: %+v %v\n%s", p.Task, sources(p), strings.Join(p.Reasons, "\n"))
	}

	p, err = coldstart.PlanTask("answer grade-school math word problems with a number", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Generation || p.Task.Metric != "final_answer" || !slices.Equal(sources(p), []string{"maths"}) {
		t.Errorf("maths: %+v %v\n%s", p.Task, sources(p), strings.Join(p.Reasons, "\n"))
	}

	// No labels named: the best-ranked dataset's.
	p, err = coldstart.PlanTask("route bank customer messages to their intent", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Classification || !slices.Equal(p.Task.Labels, []string{"card_arrival", "change_pin"}) || p.Task.Prompt != "{text}\nintent:" ||
		!slices.Equal(sources(p), []string{"support"}) {
		t.Errorf("intents: %+v %v\n%s", p.Task, sources(p), strings.Join(p.Reasons, "\n"))
	}

	// Labels no dataset has: no source, and the reasons say why each was left out.
	p, err = coldstart.PlanTask("classify messages as urgent or routine", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sources) != 0 || !slices.Equal(p.Task.Labels, []string{"urgent", "routine"}) || !strings.Contains(strings.Join(p.Reasons, "\n"), "do not map") {
		t.Errorf("urgent: %+v %v\n%s", p.Task, sources(p), strings.Join(p.Reasons, "\n"))
	}
}

// TestPlannerTakesTheExamplesWord: labelled examples decide the type and the labels.
func TestPlannerTakesTheExamplesWord(t *testing.T) {
	exs := []task.Example{{Text: "great film", Label: "pos"}, {Text: "dull", Label: "neg"}}
	p, err := coldstart.PlanTask("sort film reviews", exs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.Type != task.Classification || !slices.Equal(p.Task.Labels, []string{"neg", "pos"}) {
		t.Errorf("%+v", p.Task)
	}
	p, err = coldstart.PlanTask("do the thing", []task.Example{{Text: "Ann met Bob", Entities: []task.Entity{{Type: "PER", Text: "Ann"}}}}, nil)
	if err != nil || p.Task.Type != task.Extraction || !slices.Equal(p.Task.EntityTypes, []string{"PER"}) {
		t.Errorf("%+v %v", p, err)
	}
}

func TestPlannerRefusesWhatItCannotPlan(t *testing.T) {
	for desc, want := range map[string]string{
		"  ":                         "empty",
		"classify the tickets":       "at least two labels",
		"extract the entities, tags": "entity types",
	} {
		if _, err := coldstart.PlanTask(desc, nil, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", desc, err, want)
		}
	}
}

// TestPlannerOnTheSharedData: on ../shared/data (where it exists; CI may not have it),
// each of the cold-start benchmark's kinds of description finds its dataset.
func TestPlannerOnTheSharedData(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(dir, "SOURCES.md")); err != nil {
		t.Skipf("no shared data at %s: %v", dir, err)
	}
	c, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddBundled(); err != nil {
		t.Fatal(err)
	}
	for desc, want := range map[string]string{
		"classify customer text messages as spam or not":                                       "sms_spam",
		"pull out the people, companies and places in news sentences":                          "conll2003",
		"answer grade-school math word problems with a number":                                 "gsm8k",
		"summarise a chat conversation in one sentence":                                        "dialogsum",
		"answer grade-school science questions by choosing one of the multiple choice options": "arc_easy",
		"route online banking customer messages to their intent":                               "banking77",
	} {
		p, err := coldstart.PlanTask(desc, nil, c)
		if err != nil {
			t.Errorf("%q: %v", desc, err)
			continue
		}
		if got := sources(p); len(got) == 0 || got[0] != want {
			t.Errorf("%q: sources %v, want %s first\n%s", desc, got, want, strings.Join(p.Reasons, "\n"))
		}
	}
}
