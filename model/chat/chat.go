package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Message is one chat turn. Its JSON form is OpenAI's and transformers' message dict:
// "role", "content", and when set "reasoning_content" and "tool_calls".
type Message struct {
	// Role is "system", "user", "assistant", "tool", or whatever the template accepts.
	Role string `json:"role"`
	// Content is the message text.
	Content string `json:"content"`
	// ReasoningContent, when non-empty, is passed as the message's "reasoning_content"
	// key (Qwen3 and DeepSeek-R1 style templates render it inside <think></think>).
	// Empty leaves the key out, as transformers does for a dict without it.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ToolCalls, when non-empty, is passed as "tool_calls" in the transformers/OpenAI
	// shape: [{"type": "function", "function": {"name": ..., "arguments": ...}}] (with
	// "id" first when set).
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// ToolCall is a function call made by an assistant message. Its JSON form is OpenAI's:
// {"id"?, "type": "function", "function": {"name", "arguments"}}.
type ToolCall struct {
	ID   string // optional
	Name string
	// Arguments is either a string holding JSON text (templates that test
	// "arguments is string" print it verbatim) or a JSON value: json.RawMessage
	// (decoded, key order kept) or Go values such as map[string]any.
	Arguments any
}

type toolCallJSON struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
	} `json:"function"`
}

// MarshalJSON writes the call in OpenAI's shape.
func (c ToolCall) MarshalJSON() ([]byte, error) {
	j := toolCallJSON{ID: c.ID, Type: "function"}
	j.Function.Name = c.Name
	if c.Arguments != nil {
		b, err := json.Marshal(c.Arguments)
		if err != nil {
			return nil, fmt.Errorf("tool call %s: arguments: %w", c.Name, err)
		}
		j.Function.Arguments = b
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads OpenAI's shape; arguments given as a JSON string stay a string,
// any other JSON value is kept as json.RawMessage.
func (c *ToolCall) UnmarshalJSON(b []byte) error {
	var j toolCallJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Type != "" && j.Type != "function" {
		return fmt.Errorf("tool call of type %q; only \"function\" calls are supported", j.Type)
	}
	*c = ToolCall{ID: j.ID, Name: j.Function.Name}
	if a := j.Function.Arguments; len(a) > 0 && string(a) != "null" {
		var str string
		if a[0] == '"' && json.Unmarshal(a, &str) == nil {
			c.Arguments = str
		} else {
			c.Arguments = a
		}
	}
	return nil
}

// Options are the apply_chat_template arguments other than the messages.
type Options struct {
	// AddGenerationPrompt appends the header that starts an assistant turn.
	AddGenerationPrompt bool
	// EnableThinking sets the enable_thinking template variable (Qwen3); nil leaves it
	// undefined so the template's default applies.
	EnableThinking *bool
	// Extra holds further template variables (kwargs in Python), e.g. "tools" (a list
	// of JSON schemas), "documents", "date_string". They override the special tokens.
	// Values may be json.RawMessage (decoded with key order kept), strings, numbers,
	// bools, nil, slices and maps with string keys, nested; other types (structs) are
	// converted through encoding/json.
	Extra map[string]any
}

// ErrNoTemplate is returned (wrapped) by Load for a tokenizer configuration without a chat
// template.
var ErrNoTemplate = errors.New("no chat template")

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct {
	source  string
	tpl     *exec.Template
	special map[string]string // non-empty named special tokens: bos_token, eos_token, ...
}

// TemplateError is returned by Render when the template itself rejects the input by
// calling raise_exception(message), as transformers raises jinja2.TemplateError.
type TemplateError struct {
	Message string
}

func (e *TemplateError) Error() string { return "chat template: " + e.Message }

// specialTokenKeys are the named special tokens transformers passes to every template
// (PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES); absent or null ones are left out.
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// Load reads a tokenizer_config.json and parses its chat template. As in transformers, a
// chat_template.jinja file next to it takes precedence over the config's chat_template,
// which may be a string or a list of {"name", "template"} objects (the one named
// "default" is used). The named special tokens (bos_token, eos_token, ...; strings or
// {"content": ...} objects) become template variables.
func Load(tokenizerConfigPath string) (*Template, error) {
	data, err := os.ReadFile(tokenizerConfigPath)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("chat: %s: %w", tokenizerConfigPath, err)
	}
	special := map[string]string{}
	for _, key := range specialTokenKeys {
		raw, ok := cfg[key]
		if !ok {
			continue
		}
		tok, err := tokenContent(raw)
		if err != nil {
			return nil, fmt.Errorf("chat: %s: %s: %w", tokenizerConfigPath, key, err)
		}
		if tok != "" {
			special[key] = tok
		}
	}

	var src string
	jinjaPath := filepath.Join(filepath.Dir(tokenizerConfigPath), "chat_template.jinja")
	if b, err := os.ReadFile(jinjaPath); err == nil {
		src = string(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chat: %w", err)
	} else if raw, ok := cfg["chat_template"]; ok && string(raw) != "null" {
		if src, err = pickTemplate(raw); err != nil {
			return nil, fmt.Errorf("chat: %s: %w", tokenizerConfigPath, err)
		}
	} else {
		return nil, fmt.Errorf("chat: %s has no chat_template (and there is no %s): %w", tokenizerConfigPath, jinjaPath, ErrNoTemplate)
	}

	t, err := parse(src, special)
	if err != nil {
		return nil, fmt.Errorf("chat: %s: %w", tokenizerConfigPath, err)
	}
	return t, nil
}

// tokenContent reads a special token written as a string, null, or an AddedToken object.
func tokenContent(raw json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == nil {
			return "", nil
		}
		return *s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want a string or an object with \"content\", got %.60s", raw)
	}
	return *obj.Content, nil
}

// pickTemplate reads chat_template: a string, or a list of named templates.
func pickTemplate(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("chat_template is neither a string nor a list of {name, template}: %w", err)
	}
	var names []string
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return "", fmt.Errorf("chat_template lists templates %q but none named \"default\"", names)
}

// Parse parses a chat template source. bos and eos become the bos_token and eos_token
// variables; an empty string leaves the variable undefined (as a null token does in
// transformers).
func Parse(src string, bos, eos string) (*Template, error) {
	special := map[string]string{}
	if bos != "" {
		special["bos_token"] = bos
	}
	if eos != "" {
		special["eos_token"] = eos
	}
	t, err := parse(src, special)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return t, nil
}

func parse(src string, special map[string]string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("template engine panicked while parsing: %v", r)
		}
	}()
	tpl, err := compile(src)
	if err != nil {
		return nil, err
	}
	return &Template{source: src, tpl: tpl, special: special}, nil
}

// Source returns the template text.
func (t *Template) Source() string { return t.source }

// Render applies the template to a conversation, like
// tokenizer.apply_chat_template(messages, tokenize=False, ...) in transformers. The
// variables are the special tokens, then o.Extra, then messages, add_generation_prompt
// and (when set) enable_thinking.
func (t *Template) Render(msgs []Message, o Options) (out string, err error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: cannot apply a chat template to an empty conversation")
	}
	vars := make(map[string]any, len(t.special)+len(o.Extra)+3)
	for k, v := range t.special {
		vars[k] = v
	}
	for k, v := range o.Extra {
		nv, err := normalize(v)
		if err != nil {
			return "", fmt.Errorf("chat: Extra[%q]: %w", k, err)
		}
		vars[k] = nv
	}
	list := make(pyList, len(msgs))
	for i, m := range msgs {
		mv, err := messageValue(m)
		if err != nil {
			return "", fmt.Errorf("chat: message %d: %w", i, err)
		}
		list[i] = mv
	}
	vars["messages"] = list
	vars["add_generation_prompt"] = o.AddGenerationPrompt
	if o.EnableThinking != nil {
		vars["enable_thinking"] = *o.EnableThinking
	}
	return t.execute(vars)
}

// messageValue converts a Message to the dict a Python caller would pass, keys in the
// order role, content, reasoning_content, tool_calls.
func messageValue(m Message) (*exec.Dict, error) {
	d := &exec.Dict{}
	add := func(d *exec.Dict, k string, v any) {
		d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(v)})
	}
	add(d, "role", m.Role)
	add(d, "content", m.Content)
	if m.ReasoningContent != "" {
		add(d, "reasoning_content", m.ReasoningContent)
	}
	if len(m.ToolCalls) > 0 {
		calls := make(pyList, len(m.ToolCalls))
		for i, c := range m.ToolCalls {
			args, err := normalize(c.Arguments)
			if err != nil {
				return nil, fmt.Errorf("tool call %d arguments: %w", i, err)
			}
			fn := &exec.Dict{}
			add(fn, "name", c.Name)
			add(fn, "arguments", args)
			call := &exec.Dict{}
			if c.ID != "" {
				add(call, "id", c.ID)
			}
			add(call, "type", "function")
			add(call, "function", fn)
			calls[i] = call
		}
		add(d, "tool_calls", calls)
	}
	return d, nil
}

// trimErrorPrefix drops the "unable to execute template: " gonja puts before every
// render error; what follows names the line and expression that failed.
func trimErrorPrefix(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "unable to execute template: "))
}
