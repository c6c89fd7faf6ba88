package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
)

// TestCatalogHoldsNoTestSplit: the agent's catalog has no test file of any task, SMS
// Spam's hash split puts every message on one side, the same way twice.
func TestCatalogHoldsNoTestSplit(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(shared, "SOURCES.md")); err != nil {
		t.Skipf("no shared data at %s", shared)
	}
	count := func(dir string) map[string]string {
		out := map[string]string{}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				out[rel] = string(b)
			}
			return nil
		})
		return out
	}
	var runs []map[string]string
	for range 2 {
		work := t.TempDir()
		if err := buildCatalog(shared, filepath.Join(work, "catalog"), filepath.Join(work, "heldout")); err != nil {
			t.Fatal(err)
		}
		files := count(filepath.Join(work, "catalog"))
		for name, bt := range tasks {
			for _, f := range bt.test {
				if _, ok := files[filepath.Join(bt.dir, f)]; ok {
					t.Fatalf("%s's test file %s is in the agent's catalog", name, f)
				}
			}
		}
		train := files[filepath.Join("classification", "sms_spam", "train.tsv")]
		test := count(filepath.Join(work, "heldout"))[filepath.Join("classification", "sms_spam", "test.tsv")]
		nTrain, nTest := strings.Count(train, "\n")-1, strings.Count(test, "\n")-1
		if nTrain+nTest != 5574 || nTest < 1000 || nTest > 1250 {
			t.Fatalf("SMS Spam split %d / %d of 5574", nTrain, nTest)
		}
		// MBPP's official split: task_id 11-510 held out, the rest (1-10, 511-974) in.
		mtrain := files[filepath.Join("code", "mbpp", "train.jsonl")]
		mtest := count(filepath.Join(work, "heldout"))[filepath.Join("code", "mbpp", "test.jsonl")]
		if n, m := strings.Count(mtrain, "\n"), strings.Count(mtest, "\n"); n != 474 || m != 500 || strings.Contains(mtrain, `"task_id": 11,`) || !strings.Contains(mtest, `"task_id": 11,`) {
			t.Fatalf("MBPP split %d / %d of 974", n, m)
		}
		runs = append(runs, map[string]string{"train": train, "test": test})
	}
	if runs[0]["test"] != runs[1]["test"] {
		t.Fatal("the hash split differs between two builds")
	}
}

// TestTestSplitsRead: every runnable task's official test split is read in the task's
// terms (SST-2's test file names its text column otherwise than its training file).
func TestTestSplitsRead(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(shared, "SOURCES.md")); err != nil {
		t.Skipf("no shared data at %s", shared)
	}
	work := t.TempDir()
	catDir, heldout := filepath.Join(work, "catalog"), filepath.Join(work, "heldout")
	if err := buildCatalog(shared, catDir, heldout); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(catDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sst2", "sms_spam", "banking77", "mbpp"} {
		bt := tasks[name]
		p, err := coldstart.PlanTask(bt.description, nil, cat)
		if err != nil {
			t.Fatal(err)
		}
		exs, err := testExamples(p, bt, shared, heldout)
		if err != nil || len(exs) < 500 {
			t.Fatalf("%s: %d test examples, %v", name, len(exs), err)
		}
		if name == "sst2" && len(exs) != 1821 {
			t.Fatalf("sst2: %d test examples, want 1821", len(exs))
		}
	}
}
