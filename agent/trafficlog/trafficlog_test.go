package trafficlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/task"
)

func TestLabelAndForTask(t *testing.T) {
	dir := t.TempDir()
	tk, err := task.New("topics", task.Classification, []string{"food", "travel"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	tk.Prompt = "Message: {text}\nTopic:"
	line := func(id, version, text, out string) string {
		return `{"id": "` + id + `", "model": "deployment", "version": "` + version + `", "prompt": ` + quote(tk.PromptText(text)) + `, "output": ` + quote(out) + "}\n"
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(RotatedName(1), line("a", "v0", "pizza tonight", " travel")+line("b", "v0", "a flight to rome", " travel"))
	write(RotatedName(2), line("c", "v1", "pasta recipe", " travel")+line("d", "v0", "not the template", " food"))
	write(TrafficFile, line("e", "v1", "hotel booking", " travel")+`{"id": "torn`)
	write(FeedbackFile, `{"id": "a", "verdict": "right"}
{"id": "a", "verdict": "wrong", "expected": "food"}
{"id": "b", "verdict": "right"}
{"id": "c", "verdict": "wrong", "expected": "food"}
{"id": "e", "verdict": "right"}
{"id": "zz", "verdict": "wrong", "expected": "food"}
`)
	wrong, right, unknown, err := Label(dir, "")
	if err != nil || len(wrong) != 2 || wrong[0].ID != "a" || wrong[1].ID != "c" || len(right) != 2 || unknown != 1 {
		t.Fatalf("all versions: wrong %+v, right %+v, unknown %d, %v", wrong, right, unknown, err)
	}
	wrong, right, _, err = Label(dir, "v1")
	if err != nil || len(wrong) != 1 || wrong[0].ID != "c" || len(right) != 1 || right[0].ID != "e" || right[0].Expected != " travel" {
		t.Fatalf("v1: wrong %+v, right %+v, %v", wrong, right, err)
	}
	wrong, right, _, _ = Label(dir, "v0")
	failures, traffic, sp, err := ForTask(tk, append(wrong, Labelled{ID: "x", Input: "free text", Output: " food", Expected: "food"}), right)
	if err != nil || sp.Failures != 1 || sp.Traffic != 1 || sp.NotTask != 1 {
		t.Fatalf("for the task: %+v %v", sp, err)
	}
	if !strings.Contains(string(failures), `"expected":"food","id":"a","input":"pizza tonight","output":"travel"`) ||
		!strings.Contains(string(traffic), `"text":"a flight to rome"`) || !strings.Contains(string(traffic), `"label":"travel"`) {
		t.Fatalf("failures %s\ntraffic %s", failures, traffic)
	}
	empty := t.TempDir()
	if w, r, u, err := Label(empty, ""); err != nil || len(w)+len(r)+u != 0 {
		t.Fatalf("an empty log folder: %v %v %d %v", w, r, u, err)
	}
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
