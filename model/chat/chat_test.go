package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

const testdata = "../../testdata/chat"

// fixture is a file written by scripts/gen_chat_fixtures.py.
type fixture[C any] struct {
	Versions map[string]string `json:"versions"`
	Cases    []C               `json:"cases"`
}

func readFixture[C any](t *testing.T, name string) []C {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture[C]
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s has no cases", name)
	}
	return f.Cases
}

type chatCase struct {
	Name                string                     `json:"name"`
	Config              string                     `json:"config"`
	Messages            []jsonMessage              `json:"messages"`
	AddGenerationPrompt bool                       `json:"add_generation_prompt"`
	EnableThinking      *bool                      `json:"enable_thinking"`
	Extra               map[string]json.RawMessage `json:"extra"`
	Expected            *string                    `json:"expected"`
	Error               string                     `json:"error"`
}

type jsonMessage struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content"`
	ToolCalls        []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

func (m jsonMessage) message(t *testing.T) Message {
	msg := Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
	for _, c := range m.ToolCalls {
		var args any = c.Function.Arguments
		var s string
		if json.Unmarshal(c.Function.Arguments, &s) == nil {
			args = s // arguments given as JSON text
		}
		msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: args})
	}
	return msg
}

// TestCases renders every conversation of cases.json and compares with what
// transformers' apply_chat_template produced, byte for byte.
func TestCases(t *testing.T) {
	templates := map[string]*Template{}
	for _, c := range readFixture[chatCase](t, "cases.json") {
		t.Run(c.Name, func(t *testing.T) {
			tpl, ok := templates[c.Config]
			if !ok {
				var err error
				if tpl, err = Load(filepath.Join(testdata, c.Config)); err != nil {
					t.Fatal(err)
				}
				templates[c.Config] = tpl
			}
			msgs := make([]Message, len(c.Messages))
			for i, m := range c.Messages {
				msgs[i] = m.message(t)
			}
			o := Options{AddGenerationPrompt: c.AddGenerationPrompt, EnableThinking: c.EnableThinking}
			if len(c.Extra) > 0 {
				o.Extra = map[string]any{}
				for k, v := range c.Extra {
					o.Extra[k] = v
				}
			}
			got, err := tpl.Render(msgs, o)
			checkOutcome(t, got, err, c.Expected, c.Error)
		})
	}
}

type jinjaCase struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Vars     json.RawMessage `json:"vars"`
	Expected *string         `json:"expected"`
	Error    string          `json:"error"`
}

// knownJinjaDifferences are jinja_cases.json entries where this package is known to
// differ from Python Jinja (see the package comment); they are checked to still differ
// so that a gonja upgrade that fixes one is noticed.
var knownJinjaDifferences = map[string]string{
	"index/unicode_char":          "gonja indexes strings by byte (slices are by character)",
	"op/tilde_none":               "None and undefined are both nil, which prints as \"\"",
	"filter/default_none":         "None and undefined are both nil, so default() replaces None",
	"op/negative_floor_div_mod":   "gonja's // and % truncate toward zero instead of flooring",
	"op/power":                    "gonja's ** always gives a float",
	"op/bool_equals_int":          "gonja does not treat True as equal to 1",
	"op/string_repeat":            "gonja's int * str gives 0 (str * int works)",
	"op/tuple_literal":            "tuples print as lists",
	"op/set_tuple_unpack":         "gonja cannot assign to several names in one set",
	"op/inline_if_in_elif":        "a conditional expression inside an elif is not rewritten, and gonja cannot parse it",
	"op/str_plus_dict":            "gonja's + turns a non-string into a string instead of raising",
	"op/none_is_defined":          "None and undefined are both nil, so a None value is not defined",
	"index/negative_list_literal": "x[-n] on a list of length n built by the template (literal, concatenation) is undefined in gonja",
}

// TestJinjaFeatures renders the single-feature templates of jinja_cases.json with the
// same variables Python had and compares with Python Jinja's output.
func TestJinjaFeatures(t *testing.T) {
	for _, c := range readFixture[jinjaCase](t, "jinja_cases.json") {
		t.Run(c.Name, func(t *testing.T) {
			vars, err := decodeVars(c.Vars)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			tpl, err := parse(c.Template, nil)
			if err == nil {
				got, err = tpl.execute(vars)
			}
			diff := outcomeDiff(got, err, c.Expected, c.Error)
			if why, ok := knownJinjaDifferences[c.Name]; ok {
				if diff == "" {
					t.Errorf("known difference (%s) no longer differs: remove it from knownJinjaDifferences", why)
				}
				t.Skipf("known difference: %s", why)
			}
			if diff != "" {
				t.Error(diff)
			}
		})
	}
}

// decodeVars decodes a JSON object of template variables, keeping key order.
func decodeVars(raw json.RawMessage) (map[string]any, error) {
	v, err := decodeOrdered(raw)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{}
	for _, p := range v.(*exec.Dict).Pairs {
		vars[p.Key.String()] = p.Value.Interface()
	}
	return vars, nil
}

// checkOutcome compares a render with the fixture.
func checkOutcome(t *testing.T, got string, err error, expected *string, pyErr string) {
	t.Helper()
	if diff := outcomeDiff(got, err, expected, pyErr); diff != "" {
		t.Fatal(diff)
	}
}

// outcomeDiff describes how a render differs from the fixture's expected string, or
// error (a *TemplateError with the same message when Python's was a raise_exception);
// "" when it does not.
func outcomeDiff(got string, err error, expected *string, pyErr string) string {
	if pyErr != "" {
		if err == nil {
			return fmt.Sprintf("rendered %q; Python raised %s", got, pyErr)
		}
		if msg, ok := strings.CutPrefix(pyErr, "TemplateError: "); ok {
			var te *TemplateError
			if !errors.As(err, &te) {
				return fmt.Sprintf("error %v is not a *TemplateError; Python raised %s", err, pyErr)
			}
			if te.Message != msg {
				return fmt.Sprintf("raise_exception message %q, Python's %q", te.Message, msg)
			}
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("unexpected error: %v", err)
	}
	if expected == nil {
		return "fixture has neither expected nor error"
	}
	if got != *expected {
		return fmt.Sprintf("output differs from transformers\n got: %q\nwant: %q", got, *expected)
	}
	return ""
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	noTemplate := write("none.json", `{"eos_token": "</s>"}`)
	_, err := Load(noTemplate)
	if err == nil || !strings.Contains(err.Error(), noTemplate) || !strings.Contains(err.Error(), "no chat_template") {
		t.Errorf("missing template: got %v", err)
	}

	nullTemplate := write("null.json", `{"chat_template": null}`)
	if _, err := Load(nullTemplate); err == nil || !strings.Contains(err.Error(), nullTemplate) {
		t.Errorf("null template: got %v", err)
	}

	noDefault := write("nodefault.json", `{"chat_template": [{"name": "tool_use", "template": "x"}]}`)
	if _, err := Load(noDefault); err == nil || !strings.Contains(err.Error(), "default") {
		t.Errorf("list without default: got %v", err)
	}

	bad := write("bad.json", `{"chat_template": "{% for m in messages %}{{ m.content }}"}`)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("syntax error: got %v", err)
	}

	if _, err := Load(filepath.Join(dir, "absent.json")); err == nil {
		t.Error("absent file: no error")
	}
	if _, err := Load(write("notjson.json", `{`)); err == nil {
		t.Error("invalid JSON: no error")
	}
	if _, err := Load(write("badtoken.json", `{"chat_template": "x", "bos_token": 3}`)); err == nil {
		t.Error("numeric bos_token: no error")
	}
}

// TestLoadChatTemplateFile checks that a chat_template.jinja next to the config wins over
// the config's chat_template, as in transformers.
func TestLoadChatTemplateFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tokenizer_config.json")
	if err := os.WriteFile(cfg, []byte(`{"chat_template": "config", "bos_token": {"content": "<s>"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte("{{ bos_token }}file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render([]Message{{Role: "user", Content: "x"}}, Options{})
	if err != nil || got != "<s>file" {
		t.Fatalf("got %q, %v; want \"<s>file\"", got, err)
	}
}

func TestParseAndRenderErrors(t *testing.T) {
	if _, err := Parse("{% if %}", "", ""); err == nil || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("syntax error: got %v", err)
	}
	if _, err := Parse("{{ messages", "", ""); err == nil {
		t.Error("unclosed expression: no error")
	}

	tpl, err := Parse("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}", "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(nil, Options{}); err == nil {
		t.Error("empty conversation: no error")
	}
	got, err := tpl.Render([]Message{{Role: "user", Content: "hi"}}, Options{})
	if err != nil || got != "<s>hi</s>" {
		t.Errorf("got %q, %v", got, err)
	}

	raising, err := Parse("{{ raise_exception('nope: ' ~ messages[0].role) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = raising.Render([]Message{{Role: "tool"}}, Options{})
	var te *TemplateError
	if !errors.As(err, &te) || te.Message != "nope: tool" {
		t.Errorf("raise_exception: got %v", err)
	}

	// errors from the template other than raise_exception
	for _, src := range []string{
		"{{ messages | no_such_filter }}",
		"{{ no_such_function() }}",
		"{{ messages[0].content.no_such_method() }}",
		"{{ 'a' | tojson(bogus=1) }}",
		"{{ messages | tojson }}{{ strftime_now('%Q') }}",
	} {
		tpl, err := Parse(src, "", "")
		if err != nil {
			t.Errorf("%s: parse: %v", src, err)
			continue
		}
		if out, err := tpl.Render([]Message{{Role: "user", Content: "x"}}, Options{}); err == nil {
			t.Errorf("%s: rendered %q, want an error", src, out)
		} else {
			t.Logf("%s: %v", src, err)
		}
	}
}

// TestOptions checks the variables a render sees.
func TestOptions(t *testing.T) {
	tpl, err := Parse("{{ add_generation_prompt }}|{{ enable_thinking is defined }}|{{ enable_thinking }}|"+
		"{{ bos_token is defined }}|{{ eos_token }}|{{ tools | tojson }}|{{ n }}|{{ messages[0].tool_calls | tojson }}",
		"", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	msgs := []Message{{Role: "assistant", ToolCalls: []ToolCall{
		{ID: "c1", Name: "f", Arguments: json.RawMessage(`{"z": 1, "a": [1.5, "x"]}`)},
		{Name: "g", Arguments: map[string]any{"b": 2, "a": true}},
		{Name: "h", Arguments: `{"raw": "text"}`},
	}}}
	got, err := tpl.Render(msgs, Options{
		AddGenerationPrompt: true,
		EnableThinking:      &off,
		Extra: map[string]any{
			"tools":     []json.RawMessage{json.RawMessage(`{"type": "function", "function": {"name": "f"}}`)},
			"n":         json.Number("7"),
			"eos_token": "overridden",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `True|True|False|False|overridden|[{"type": "function", "function": {"name": "f"}}]|7|` +
		`[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"z": 1, "a": [1.5, "x"]}}}, ` +
		`{"type": "function", "function": {"name": "g", "arguments": {"a": true, "b": 2}}}, ` +
		`{"type": "function", "function": {"name": "h", "arguments": "{\"raw\": \"text\"}"}}]`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	got, err = tpl.Render([]Message{{Role: "user"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "False|False||False|</s>|null|") {
		t.Errorf("defaults: got %q", got)
	}

	if _, err := tpl.Render(msgs[:1], Options{Extra: map[string]any{"tools": json.RawMessage(`{`)}}); err == nil {
		t.Error("invalid json.RawMessage in Extra: no error")
	}

	// other Go values: structs go through encoding/json (field order kept), slices
	// and maps element by element
	type param struct {
		Type string  `json:"type"`
		Min  float64 `json:"min"`
	}
	tools, err := Parse("{{ tools | tojson }} {{ tools[-1].min }} {{ n }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err = tools.Render(msgs[:1], Options{Extra: map[string]any{
		"tools": []any{map[string]any{"z": []string{"a"}, "p": &param{Type: "number", Min: 0.5}}, param{Type: "int", Min: 2}},
		"n":     uint8(3),
	}})
	want = `[{"p": {"type": "number", "min": 0.5}, "z": ["a"]}, {"type": "int", "min": 2}] 2 3`
	if err != nil || got != want {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
}

// TestConcurrentRender renders one template from many goroutines (run with -race).
func TestConcurrentRender(t *testing.T) {
	tpl, err := Load(filepath.Join(testdata, "qwen3_tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "<think>\nr\n</think>\n\nok"}, {Role: "user", Content: "again"}}
	want, err := tpl.Render(msgs, Options{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, err := tpl.Render(msgs, Options{AddGenerationPrompt: true})
				if err != nil || got != want {
					t.Errorf("concurrent render: %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestStrftime(t *testing.T) {
	tm := time.Date(2024, time.July, 6, 15, 4, 5, 123456000, time.UTC)
	got, err := strftime(tm, "%d %b %Y|%A %B %j|%H:%M:%S %I%p|%y-%m-%e|%f %a %w %u %%|%F %T")
	want := "06 Jul 2024|Saturday July 188|15:04:05 03PM|24-07- 6|123456 Sat 6 6 %|2024-07-06 15:04:05"
	if err != nil || got != want {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
	if _, err := strftime(tm, "%Q"); err == nil {
		t.Error("unknown directive: no error")
	}
	if _, err := strftime(tm, "abc%"); err == nil {
		t.Error("lone %: no error")
	}
}

func TestPyFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0", 1.5e-5: "1.5e-05",
		0.0001: "0.0001", 123.456: "123.456", -2.5: "-2.5", 1e-7: "1e-07", 1.7976931348623157e308: "1.7976931348623157e+308",
	} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestPrepareSource(t *testing.T) {
	for src, want := range map[string]string{
		"{{ x }} {% if y %}":                       "{{ x }} {%+ if y %}",
		"{% if a %}\t{# c #}":                      "{% if a %}\t{#+ c #}",
		"  {% if a %}":                             "  {% if a %}", // at the start: Jinja strips too
		"{{ x }}\n  {% if a %}":                    "{{ x }}\n  {% if a %}",
		"{{ x }} {%- if a %} {%+ if b %}":          "{{ x }} {%- if a %} {%+ if b %}",
		"{{ '%}{%' }} {% if a %}":                  "{{ '%}{%' }} {%+ if a %}",
		"{{ {'a': {'b': 1}} }} {% if a %}":         "{{ {'a': {'b': 1}} }} {%+ if a %}",
		"{% raw %} {% x %}{% endraw %} {% if a %}": "{% raw %} {% x %}{% endraw %} {%+ if a %}",
		"{{ x }}a {% if a %}":                      "{{ x }}a {% if a %}",
		"{{ unclosed {% if %}":                     "{{ unclosed {% if %}",
		"{% if a %} {% if b %}":                    "{% if a %} {%+ if b %}",
		// string literals with backslashes are re-encoded
		`{{ 'a\'b' }}`:                 `{{ 'a\x27b' }}`,
		`{{ "x\\" ~ 'y' }}`:            `{{ 'x\x5c' ~ 'y' }}`,
		"{{ 'a\\\nb\\tc' }}":           `{{ 'ab\tc' }}`,
		`{{ '\x41\101\u00e9\q' }}`:     `{{ 'AAé\x5cq' }}`,
		`{# '\x41' #}{{ "plain" }}`:    `{# '\x41' #}{{ "plain" }}`,
		`{{ 'bad \x4' }}`:              `{{ 'bad \x4' }}`,
		`{% set x = "\"q\"" %}{{ x }}`: `{% set x = '\x22q\x22' %}{{ x }}`,
	} {
		if got := prepareSource(src); got != want {
			t.Errorf("prepareSource(%q) = %q, want %q", src, got, want)
		}
	}
}

// TestNoPanics parses and renders every prefix of the Qwen3 template: whatever the
// engine makes of broken input must come back as an error, not a panic.
func TestNoPanics(t *testing.T) {
	tpl, err := Load(filepath.Join(testdata, "qwen3_tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	src := tpl.Source()
	msgs := []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}, {Role: "assistant", Content: "<think>r</think>a"}}
	step := 3
	if testing.Short() {
		step = 13
	}
	parsed := 0
	for n := 0; n <= len(src); n += step {
		p, err := Parse(src[:n], "", "")
		if err != nil {
			continue
		}
		parsed++
		_, _ = p.Render(msgs, Options{AddGenerationPrompt: true})
	}
	if parsed == 0 {
		t.Error("no prefix parsed")
	}

	// a panic inside the engine (here from a Go function in the variables) is an error
	p, err := Parse("{{ boom() }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.execute(map[string]any{"boom": func() string { panic("kaboom") }})
	if err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Errorf("panic: got %v", err)
	}
}

// TestRangeDoesNotLeak checks that an unused range() leaves no goroutine behind (gonja's
// own range does).
func TestRangeDoesNotLeak(t *testing.T) {
	tpl, err := Parse("{% set r = range(5) %}{% for i in range(10) %}{% if i == 2 %}{% break %}{% endif %}{% endfor %}ok", "", "")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 50 {
		if out, err := tpl.Render([]Message{{Role: "user"}}, Options{}); err != nil || out != "ok" {
			t.Fatalf("got %q, %v", out, err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Errorf("goroutines: %d before, %d after 50 renders", before, after)
	}
}

func BenchmarkRenderQwen3(b *testing.B) {
	tpl, err := Load(filepath.Join(testdata, "qwen3_tokenizer_config.json"))
	if err != nil {
		b.Fatal(err)
	}
	msgs := []Message{
		{Role: "system", Content: "You are helpful."},
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "<think>\nr\n</think>\n\nHello"},
		{Role: "user", Content: "Tell me more."},
	}
	for b.Loop() {
		if _, err := tpl.Render(msgs, Options{AddGenerationPrompt: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMessageJSON: messages read and write OpenAI's field names, tool calls included.
func TestMessageJSON(t *testing.T) {
	in := `{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"x\": 1}"}},{"type":"function","function":{"name":"put","arguments":{"y":2}}}]}`
	var m Message
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if m.Role != "assistant" || len(m.ToolCalls) != 2 || m.ToolCalls[0].Arguments != `{"x": 1}` || m.ToolCalls[1].Name != "put" {
		t.Fatalf("%+v", m)
	}
	if raw, ok := m.ToolCalls[1].Arguments.(json.RawMessage); !ok || string(raw) != `{"y":2}` {
		t.Fatalf("arguments %#v", m.ToolCalls[1].Arguments)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"x\": 1}"}},{"type":"function","function":{"name":"put","arguments":{"y":2}}}]}`
	if string(out) != want {
		t.Fatalf("marshal:\n%s\nwant\n%s", out, want)
	}
	plain, _ := json.Marshal(Message{Role: "user", Content: "hi"})
	if string(plain) != `{"role":"user","content":"hi"}` {
		t.Fatalf("plain message %s", plain)
	}
	if err := json.Unmarshal([]byte(`{"role":"assistant","tool_calls":[{"type":"retrieval","function":{"name":"x"}}]}`), &m); err == nil {
		t.Fatal("a non-function tool call accepted")
	}
}
