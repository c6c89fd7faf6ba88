package catalog_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/catalog"
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

// fixture is a catalog folder with one dataset of each format the catalog reads, an
// index file describing some, a card, and a folder it cannot use.
func fixture(t *testing.T) string {
	root := t.TempDir()
	write(t, filepath.Join(root, "SOURCES.md"), "# data\n\n- **Support intents** — `intents/support/` — license CC-BY-4.0 (repo LICENSE) — customer support messages and their intents.\n"+
		"- **Questions** — `qa/science/` — no license in the source repo — science exam questions with choices.\n")
	// CSV with a header, quoted texts; every row's text its own, as in real data.
	var csv, tsv, jsonl strings.Builder
	csv.WriteString("text,category\n")
	tsv.WriteString("Label\tSMS\n")
	for i := range 6 {
		fmt.Fprintf(&csv, "\"where is my card, please (%d)\",card_arrival\nmy card %d has not arrived yet,card_arrival\nhow do I reset pin %d,change_pin\n"+
			"I forgot my pin number %d,change_pin\ncan I get refund %d,refund\nthe refund %d is not showing up,refund\n", i, i, i, i, i, i)
		fmt.Fprintf(&tsv, "ham\tsee you \"at\" %d tonight\nspam\tWIN a free prize %d now, text back\nham\tare we still on for lunch at %d\n", i, i, i)
		fmt.Fprintf(&jsonl, `{"question": "What is %d plus three?", "answer": "%d + 3 = %d\n#### %d", "meta": {"source": "x"}}`+"\n", i, i, i+3, i+3)
		fmt.Fprintf(&jsonl, `{"question": "What is ten minus %d?", "answer": "10 - %d = %d\n#### %d", "meta": {"source": "y"}}`+"\n", i, i, 10-i, 10-i)
	}
	write(t, filepath.Join(root, "intents/support/train.csv"), csv.String())
	write(t, filepath.Join(root, "intents/support/test.csv"), "text,category\nwhen will the card come,card_arrival\nnew pin please,change_pin\n")
	write(t, filepath.Join(root, "intents/support/categories.json"), `["card_arrival", "change_pin", "refund"]`)
	// TSV with no quoting (a stray quote stays text) and the label first.
	write(t, filepath.Join(root, "sms/messages.tsv"), tsv.String())
	// JSONL generation, nested fields.
	write(t, filepath.Join(root, "math/train.jsonl"), jsonl.String())
	// Multiple choice in ARC's shape and in CommonsenseQA's.
	write(t, filepath.Join(root, "qa/science/dev.jsonl"), `{"id": "q1", "question": {"stem": "Which is a gas?", "choices": [{"text": "ice", "label": "A"}, {"text": "steam", "label": "B"}]}, "answerKey": "B"}`+"\n"+
		`{"id": "q2", "question": {"stem": "Which is warm?", "choices": [{"text": "sun", "label": "1"}, {"text": "snow", "label": "2"}]}, "answerKey": "1"}`+"\n"+
		`{"id": "q3", "question": {"stem": "Which is liquid?", "choices": [{"text": "water", "label": "A"}, {"text": "rock", "label": "B"}]}, "answerKey": "A"}`+"\n"+
		`{"id": "q4", "question": {"stem": "Which is broken?", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "C"}`+"\n")
	write(t, filepath.Join(root, "qa/common/validation.jsonl"), `{"id": "c1", "question": "Where do fish live?", "choices": {"label": ["A", "B", "C"], "text": ["tree", "water", "sky"]}, "answerKey": "B"}`+"\n"+
		`{"id": "c2", "question": "What do cows drink?", "choices": {"label": ["A", "B", "C"], "text": ["milk", "water", "oil"]}, "answerKey": "B"}`+"\n"+
		`{"id": "c3", "question": "What is cold?", "choices": {"label": ["A", "B", "C"], "text": ["ice", "fire", "sun"]}, "answerKey": "A"}`+"\n")
	// CoNLL: -DOCSTART-, B- and I- tags, a blank line between sentences.
	write(t, filepath.Join(root, "ner/train.txt"), "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\nvisited VBD B-VP O\nLondon NNP B-NP B-LOC\n")
	// A JSON file of splits of [text, label] rows beside a JSON file that is not one.
	write(t, filepath.Join(root, "clinc/domains.json"), `{"banking": ["balance", "transfer"]}`)
	write(t, filepath.Join(root, "clinc/data_full.json"), `{"train": [["what is my balance", "balance"], ["send money to mum", "transfer"], ["balance please", "balance"], ["move 20 dollars", "transfer"],
		["how much do I have", "balance"], ["wire money", "transfer"], ["balance now", "balance"], ["transfer funds", "transfer"]], "val": [["my balance", "balance"]], "test": [["pay my friend", "transfer"]]}`)
	// A card over codes: label_names and a description.
	write(t, filepath.Join(root, "reviews/dataset.yaml"), "name: movie-reviews\ndescription: Film reviews and their sentiment.\nlicense: research use\nlabel_names: {\"0\": negative, \"1\": positive}\n")
	var rv strings.Builder
	rv.WriteString("label\tsentence\n")
	for i := range 3 {
		fmt.Fprintf(&rv, "0\ta dull and lifeless film %d\n1\ta warm , funny delight %d\n0\ttoo long by an hour %d\n1\tthe best film this year %d\n", i, i, i, i)
	}
	write(t, filepath.Join(root, "reviews/train.tsv"), rv.String())
	// A split whose header names the text otherwise, as SST-2's dev.tsv does.
	write(t, filepath.Join(root, "reviews/dev.tsv"), "label\tcontent\n1\tone of the great ones\n0\ta mess from start to end\n1\tsweet and sharp\n0\tnothing happens here\n")
	// Files that make no dataset: a text corpus.
	write(t, filepath.Join(root, "corpus/input.txt"), "First Citizen:\nBefore we proceed any further, hear me speak.\n")
	return root
}

func byName(t *testing.T, c *catalog.Catalog, name string) *catalog.Dataset {
	t.Helper()
	for _, d := range c.Datasets {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no dataset %q among %d (skipped %v)", name, len(c.Datasets), c.Skipped)
	return nil
}

// TestCatalogReadsEachFormat: every format is found, its fields and splits inferred,
// its labels or entity types counted, and its examples read as the task format has them.
func TestCatalogReadsEachFormat(t *testing.T) {
	root := fixture(t)
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Datasets) != 8 {
		for _, d := range c.Datasets {
			t.Log(d.Describe())
		}
		t.Fatalf("%d datasets, want 8; skipped %v", len(c.Datasets), c.Skipped)
	}
	if why := c.Skipped[filepath.Join(root, "corpus")]; !strings.Contains(why, "input.txt line 1") {
		t.Errorf("the corpus folder: skipped %q, want the line that is not CoNLL", why)
	}

	sup := byName(t, c, "support")
	if sup.Kind != catalog.Classification || sup.Text != "text" || sup.Label != "category" || sup.Format != "csv" ||
		sup.Rows["train"] != 36 || sup.Rows["test"] != 2 || len(sup.Splits) != 2 || sup.Labels["card_arrival"] != 13 {
		t.Errorf("support: %s, labels %v", sup.Describe(), sup.Labels)
	}
	if !strings.Contains(sup.Description, "customer support messages") || sup.License != "license CC-BY-4.0 (repo LICENSE)" {
		t.Errorf("support: description %q, license %q, want them from SOURCES.md", sup.Description, sup.License)
	}
	exs, skipped, err := sup.Examples("train")
	if err != nil || skipped != 0 || len(exs) != 36 || exs[0].ID != "train-1" || exs[0].Text != "where is my card, please (0)" || exs[0].Label != "card_arrival" {
		t.Errorf("support examples: %v skipped %d %v", exs[:min(1, len(exs))], skipped, err)
	}

	sms := byName(t, c, "sms")
	if sms.Kind != catalog.Classification || sms.Text != "SMS" || sms.Label != "Label" || sms.Rows["data"] != 18 || sms.Labels["spam"] != 6 {
		t.Errorf("sms: %s, labels %v", sms.Describe(), sms.Labels)
	}
	if exs, _, _ := sms.Examples("data"); len(exs) != 18 || exs[0].Text != `see you "at" 0 tonight` {
		t.Errorf("sms: a quote in a TSV field is text: %+v", exs[:min(1, len(exs))])
	}

	m := byName(t, c, "math")
	if m.Kind != catalog.Generation || m.Text != "question" || m.Output != "answer" {
		t.Errorf("math: %s", m.Describe())
	}
	if exs, _, _ := m.Examples("train"); len(exs) != 12 || exs[1].Output != "10 - 0 = 10\n#### 10" {
		t.Errorf("math examples %+v", exs)
	}

	sci := byName(t, c, "science")
	if sci.Kind != catalog.MultipleChoice || sci.Text != "question.stem" || sci.Choices != "question.choices" || sci.License != "none stated" {
		t.Errorf("science: %s, license %q", sci.Describe(), sci.License)
	}
	exs, skipped, err = sci.Examples("validation")
	if err != nil || skipped != 1 || len(exs) != 3 || exs[0].Text != "Which is a gas?\nA. ice\nB. steam" || exs[0].Label != "B" ||
		exs[1].Text != "Which is warm?\nA. sun\nB. snow" || exs[1].Label != "A" {
		t.Errorf("science examples (the key C of q4 is no choice): %+v skipped %d %v", exs, skipped, err)
	}
	com := byName(t, c, "common")
	if exs, _, err := com.Examples("validation"); err != nil || com.Kind != catalog.MultipleChoice || len(exs) != 3 || exs[0].Text != "Where do fish live?\nA. tree\nB. water\nC. sky" || exs[0].Label != "B" {
		t.Errorf("common: %s %+v %v", com.Describe(), exs, err)
	}

	ner := byName(t, c, "ner")
	if ner.Kind != catalog.Extraction || ner.Rows["train"] != 2 || ner.Types["PER"] != 1 || ner.Types["MISC"] != 1 {
		t.Errorf("ner: %s %v", ner.Describe(), ner.Types)
	}
	exs, _, err = ner.Examples("train")
	if err != nil || len(exs) != 2 || exs[1].Text != "Peter Blackburn visited London" || len(exs[1].Entities) != 2 ||
		exs[1].Entities[0] != (task.Entity{Type: "PER", Text: "Peter Blackburn"}) || exs[1].Entities[1] != (task.Entity{Type: "LOC", Text: "London"}) {
		t.Errorf("ner examples %+v %v", exs, err)
	}

	cl := byName(t, c, "clinc")
	if cl.Format != "json-splits" || cl.Rows["train"] != 8 || cl.Rows["validation"] != 1 || cl.Rows["test"] != 1 || cl.Labels["transfer"] != 5 {
		t.Errorf("clinc: %s %v", cl.Describe(), cl.Labels)
	}

	rv := byName(t, c, "movie-reviews")
	if rv.Description != "Film reviews and their sentiment." || rv.License != "research use" || rv.Labels["positive"] != 8 || rv.Labels["0"] != 0 {
		t.Errorf("reviews: %s %v", rv.Describe(), rv.Labels)
	}
	if exs, _, _ := rv.Examples("train"); exs[0].Label != "negative" {
		t.Errorf("reviews: the card's label_names name the codes: %+v", exs[0])
	}
	if exs, skipped, err := rv.Examples("validation"); err != nil || skipped != 0 || len(exs) != 4 || exs[1].Text != "a mess from start to end" || exs[1].Label != "negative" {
		t.Errorf("reviews: a split with its own name for the text: %+v, %d skipped, %v", exs, skipped, err)
	}
	if _, _, err := rv.Examples("test"); err == nil || !strings.Contains(err.Error(), "no split") {
		t.Errorf("a split that is not there: %v", err)
	}
}

// TestRankFindsTheDatasetADescriptionMeans: BM25 over cards, labels and rows, with
// inflections met ("summarise" finds "summaries").
func TestRankFindsTheDatasetADescriptionMeans(t *testing.T) {
	c, err := catalog.Open(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"route customer support messages to their intent": "support",
		"tell spam text messages apart":                   "sms",
		"answer science questions":                        "science",
		"the sentiment of film reviews":                   "movie-reviews",
		"what is the balance, or a transfer":              "clinc",
	} {
		ms := c.Rank(q, nil)
		if len(ms) == 0 || ms[0].Dataset.Name != want {
			var got []string
			for _, m := range ms {
				got = append(got, m.Dataset.Name)
			}
			t.Errorf("%q ranks %v, want %s first", q, got, want)
		}
	}
	// A label the query names counts.
	ms := c.Rank("messages", []string{"refund"})
	if len(ms) == 0 || ms[0].Dataset.Name != "support" || len(ms[0].Labels) != 1 {
		t.Errorf("with the label refund: %+v", ms)
	}
	if ms := c.Rank("zebra quantum", nil); len(ms) != 0 {
		t.Errorf("a query of no dataset's words matched %d", len(ms))
	}
}

func TestOpenRefusesWhatIsNotAFolder(t *testing.T) {
	if _, err := catalog.Open(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("a missing folder opened")
	}
	f := filepath.Join(t.TempDir(), "file.jsonl")
	write(t, f, "{}\n")
	if _, err := catalog.Open(f); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("a file: %v", err)
	}
}
