package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const shared = "../../../shared/data/tokenizers"

func load(t *testing.T, path string) *Tokenizer {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skip("shared data not present")
	}
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// TestGoldenEncodings checks ids against encodings made by independent reference
// implementations (shared/data/tokenizers/golden_encodings.jsonl) and round trips.
func TestGoldenEncodings(t *testing.T) {
	qwen := load(t, filepath.Join(shared, "qwen3", "tokenizer.json.gz"))
	sp := load(t, filepath.Join(shared, "sp32k_lenml_llama2pkg", "tokenizer.json"))
	f, err := os.Open(filepath.Join(shared, "golden_encodings.jsonl"))
	if err != nil {
		t.Skip("golden encodings not present")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var g struct {
			Text string `json:"text"`
			Qwen []int  `json:"qwen3"`
			SP   []int  `json:"sp32k_lenml_llama2pkg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name    string
			tok     *Tokenizer
			special bool
			want    []int
		}{{"qwen3", qwen, false, g.Qwen}, {"sp32k", sp, true, g.SP}} {
			got := mustEncode(t, c.tok, g.Text, c.special)
			if len(got) != len(c.want) {
				t.Fatalf("%s %q: %v, want %v", c.name, g.Text, got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("%s %q: %v, want %v", c.name, g.Text, got, c.want)
				}
			}
		}
		if back := qwen.Decode(g.Qwen, false); back != g.Text {
			t.Fatalf("qwen3 round trip: %q -> %q", g.Text, back)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no golden lines")
	}
	if qwen.VocabSize() < 151643 {
		t.Fatalf("qwen3 vocabulary %d", qwen.VocabSize())
	}
}

func TestTinyGPT2Tokenizer(t *testing.T) {
	tok := load(t, "../../../shared/data/models/tiny-random-gpt2/tokenizer.json")
	ids := mustEncode(t, tok, "Hello world", false)
	if len(ids) == 0 || tok.Decode(ids, false) != "Hello world" {
		t.Fatalf("round trip: %v -> %q", ids, tok.Decode(ids, false))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
	bad := filepath.Join(dir, "tokenizer.json")
	_ = os.WriteFile(bad, []byte(`{"version": "1.0", "model": {"type": "Nope"}}`), 0o644)
	if _, err := Load(bad); err == nil {
		t.Fatal("unknown model type loaded")
	}
	_ = os.WriteFile(bad, []byte(`{"version": `), 0o644)
	if _, err := Load(bad); err == nil {
		t.Fatal("truncated JSON loaded")
	}
}

// TestLlama3Tokenizer encodes with the Llama-3 tokenizer.json shipped in the tokenizers Go
// module and compares with the Hugging Face tokenizers package's ids
// (testdata/tokenizers/llama3_golden.jsonl, scripts/gen_tokenizer_golden.py).
func TestLlama3Tokenizer(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/daulet/tokenizers").Output()
	if err != nil {
		t.Skip("cannot locate the tokenizers module:", err)
	}
	tok := load(t, filepath.Join(strings.TrimSpace(string(out)), "test", "data", "Meta-Llama-3-8B-Instruct.json"))
	f, err := os.Open("../../testdata/tokenizers/llama3_golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var g struct {
			Text       string `json:"text"`
			IDs        []int  `json:"ids"`
			IDsSpecial []int  `json:"ids_special"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			special bool
			want    []int
		}{{false, g.IDs}, {true, g.IDsSpecial}} {
			if got := mustEncode(t, tok, g.Text, c.special); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("%q (special %v): %v, want %v", g.Text, c.special, got, c.want)
			}
		}
		if back := tok.Decode(g.IDs, false); back != g.Text {
			t.Fatalf("round trip %q -> %q", g.Text, back)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("%d golden lines", n)
	}
}

func mustEncode(t *testing.T, tok *Tokenizer, text string, special bool) []int {
	t.Helper()
	ids, err := tok.Encode(text, special)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestEncodeErrors: what the Rust library would silently drop is an error: text after a
// NUL byte, and encoding with a closed tokenizer.
func TestEncodeErrors(t *testing.T) {
	tok, err := Load("../../data/models/pioneer-nano/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if ids := mustEncode(t, tok, "", false); len(ids) != 0 {
		t.Fatalf("empty text: %v", ids)
	}
	if _, err := tok.Encode("before\x00after", false); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("NUL byte: %v", err)
	}
	tok.Close()
	if _, err := tok.Encode("hello", false); err == nil {
		t.Fatal("a closed tokenizer encoded")
	}
}
