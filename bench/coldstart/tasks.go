package main

import (
	"sort"
)

// benchTask is one task of the benchmark: its description (written once, never tuned
// to the planner), the shared-data folder it is scored on, and the files of that folder
// that are its test split (kept out of the agent's catalog).
type benchTask struct {
	description string
	dir         string   // under the shared data
	dataset     string   // the catalog dataset's name (the folder's)
	test        []string // test files; nil: split by hash (SMS Spam) or by testIDs
	// testIDs is an official split by an id field of a single JSONL file: the rows whose
	// idField is within [testIDs[0], testIDs[1]] are the test split (MBPP: task_id 11-510).
	idField string
	testIDs [2]int
	card    string // dataset.yaml written beside the agent's copy, when the files need one
	skip    string // why the task is not run yet
}

var tasks = map[string]benchTask{
	"sst2": {description: "classify the sentiment of movie review sentences as positive or negative", dir: "sentiment/sst2", dataset: "sst2",
		test: []string{"test.tsv"}, card: "label_names: {\"0\": negative, \"1\": positive}\n"}, // SST-2's files hold 0/1 (SOURCES.md: 0 = negative)
	"sms_spam":  {description: "classify customer text messages as spam or not", dir: "classification/sms_spam", dataset: "sms_spam"},
	"banking77": {description: "route online banking customer messages to their intent", dir: "intent/banking77", dataset: "banking77", test: []string{"test.csv"}},
	"conll2003": {description: "pull out the people, companies and places in news sentences", dir: "ner/conll2003", dataset: "conll2003", test: []string{"test.txt"}},
	"arc_easy": {description: "answer grade-school science questions by choosing one of the multiple choice options", dir: "reasoning/arc_easy", dataset: "arc_easy",
		test: []string{"test.jsonl"}},
	"samsum": {description: "summarise a chat conversation in one sentence", dir: "summarization/samsum", dataset: "samsum", test: []string{"test.jsonl"}},
	// GSM8K's worked answers are put on one line (coldstart.Plan.MapExample) and scored by
	// their final answer (final_answer): chain-of-thought supervision by the data's own
	// rationales.
	"gsm8k": {description: "answer grade-school math word problems with a number", dir: "math/gsm8k", dataset: "gsm8k", test: []string{"test.jsonl"}},
	// MBPP's code is scored by pass@1: its test_list asserts run on the generated
	// function in internal/sandbox (no network, time and memory limits).
	"mbpp": {description: "write a Python function that solves a short programming problem", dir: "code/mbpp", dataset: "mbpp",
		idField: "task_id", testIDs: [2]int{11, 510}}, // SOURCES.md: test 11-510, prompt 1-10, train/validation 511-974
}

func taskNames() []string {
	var out []string
	for k := range tasks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
