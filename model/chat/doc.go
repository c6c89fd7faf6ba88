// Package chat renders Hugging Face chat templates: the Jinja "chat_template" of a
// model's tokenizer_config.json (or its chat_template.jinja), producing the same prompt
// string as Python transformers' tokenizer.apply_chat_template(messages, tokenize=False,
// add_generation_prompt=..., **kwargs).
//
//	tpl, err := chat.Load("models/qwen3/tokenizer_config.json")
//	prompt, err := tpl.Render([]chat.Message{{Role: "user", Content: "Hi"}},
//		chat.Options{AddGenerationPrompt: true})
//
// # Engine
//
// Templates are executed by github.com/nikolalohinski/gonja/v2 v2.9.1 (MIT, released
// 2026-09), a pure-Go Jinja engine. It was chosen because it is maintained (regular
// v2 releases since 2024, imported by other modules), aims at Python Jinja rather than
// Django semantics, and has what chat templates lean on: the Python str methods,
// namespace(), the loop object, Python slicing ([::-1]), break/continue, macros, and
// the trim_blocks/lstrip_blocks options; it renders the Qwen3 template unmodified.
// github.com/kaptinlin/jinja and github.com/yzfly/gojinja2 are not on the Go module
// proxy; noirbizarre/gonja and its forks (ardanlabs, MarioJim, guided-traffic) are
// older pongo2-derived trees.
//
// The environment mirrors the one transformers builds: ImmutableSandboxedEnvironment
// with trim_blocks and lstrip_blocks, the loopcontrols extension, the {% generation %}
// tag (rendered as its body), and the globals raise_exception (a *TemplateError from
// Render) and strftime_now. Where gonja v2.9.1 differs from Python Jinja in ways
// templates notice, this package supplies its own pieces instead of forking it:
//
//   - filters (env.go, pystr.go): tojson as transformers defines it (json.dumps with
//     ", " and ": " separators, non-ASCII kept, indent/separators/sort_keys/ensure_ascii;
//     gonja's escapes and reorders), items, dictsort, reverse (gonja's also sorts),
//     round (Python's round half to even); list, map, select, selectattr, reject,
//     rejectattr, sort, unique, batch and slice wrapped to return lists that index
//     correctly (see pyList);
//   - tests: true, false (gonja's says "None is false"), boolean, number, sequence;
//   - methods: str.split, rsplit, strip, lstrip, rstrip, replace, startswith, endswith,
//     find, rfind, index, rindex, count, center, ljust, rjust (gonja's fail without
//     their optional arguments or get maxsplit wrong); dict.keys, values, items, get,
//     copy in insertion order; list.copy, count, index; and none of the mutating ones
//     (append, update, pop, ...), which the sandbox refuses too;
//   - globals: range (gonja's leaks a goroutine when not iterated to the end; this one
//     also enforces the sandbox's 100000 limit);
//   - values: JSON objects (json.RawMessage in Extra or ToolCall.Arguments) and
//     messages become ordered dicts, so iteration and tojson keep key order; lists are
//     pyLists, whose x[-n] works when n is the length (gonja's does not);
//   - source (source.go): before parsing, the template text is rewritten, keeping its
//     meaning under Python Jinja, where gonja's parser falls short: conditional
//     expressions inside brackets or call arguments and method calls on parenthesized
//     expressions are moved into set tags, string literals with backslash escapes are
//     re-encoded, and lstrip_blocks is kept from stripping after another tag on the
//     same line.
//
// # Known differences from Python Jinja
//
// Each but the last is checked by a jinja_cases.json entry listed in
// knownJinjaDifferences (chat_test.go), so that a gonja upgrade that removes one is
// noticed:
//
//   - gonja has no Undefined type: a missing variable or key and an explicit None are
//     both nil. So a key present with the value None is not "defined" and
//     "x | default(d)" replaces it, a missing one "is none", and None prints as ""
//     instead of "None". transformers passes tools=None and documents=None to every
//     template, so there "tools is defined" is true; templates that then iterate tools
//     fail in Python and work here.
//   - + between a string and a non-string concatenates instead of raising.
//   - Strings are indexed by byte (s[1] on non-ASCII text); slices are by character.
//   - x[-n] on a list of length n built in the template itself (a literal or a
//     concatenation) is undefined.
//   - // and % truncate toward zero for negative numbers, ** gives a float,
//     True == 1 is false, int * str is 0, tuples print as lists, and
//     "{% set a, b = ... %}" and conditional expressions in an elif are parse errors.
//   - Go maps have no key order: a map[string]any in Options.Extra or
//     ToolCall.Arguments is iterated and serialized by sorted key. Pass json.RawMessage
//     to keep the order of the JSON text.
package chat
