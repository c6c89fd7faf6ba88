"""gen_chat_fixtures.py: writes the chat-template fixtures under testdata/chat/.

What it makes
    testdata/chat/qwen3_tokenizer_config.json
        a copy of shared/data/tokenizers/qwen3/tokenizer_config.json (the real Qwen3
        template), so the Go tests do not depend on the shared folder.
    testdata/chat/{llama3,chatml,smollm2,mistral}_tokenizer_config.json
        small tokenizer configs with templates written for these tests that reproduce
        the shapes of well-known public formats (Llama 3 headers with a dated system
        block, ChatML with a default system message as in Qwen2.5, the compact
        one-line ChatML of SmolLM2 stored in the list-of-named-templates form, and the
        [INST] format that raises on non-alternating roles). They are written from
        the format facts, not copied.
    testdata/chat/cases.json
        conversations rendered with those configs by transformers'
        tokenizer.apply_chat_template(..., tokenize=False): inputs and the expected
        string, or the error Python raised.
    testdata/chat/jinja_cases.json
        small templates exercising single Jinja features (whitespace control, scoping,
        filters, tests, string methods, tojson, ...) rendered by the same Jinja
        environment transformers uses for chat templates, so that the Go renderer is
        checked feature by feature.

How to run (from the repository root)
    bash scripts/reference-env.sh          # creates .venv once, prints its python
    .venv/bin/python scripts/gen_chat_fixtures.py

    No model hub: each tokenizer is built by AutoTokenizer.from_pretrained on a
    temporary folder holding the config and the (decompressed) Qwen3 tokenizer.json,
    whose vocabulary does not matter for tokenize=False.

Determinism
    No randomness and fixed JSON formatting: running it twice gives identical files.
    The expected strings depend on the transformers and jinja2 versions (recorded in
    the JSON); regenerate only with the ones scripts/reference-env.sh pins.
"""

import gzip
import json
import os
import shutil
import sys
import tempfile

import jinja2
import transformers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "chat")
SHARED_QWEN3 = os.path.join(ROOT, "..", "shared", "data", "tokenizers", "qwen3")

# --- templates written for the tests ------------------------------------------------

# Llama 3 header format: <|begin_of_text|>, then per message
# <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>, with a system block
# that carries the knowledge cutoff and today's date, and the assistant header as the
# generation prompt. Only user/assistant turns after the optional system message.
LLAMA3 = """{{- bos_token -}}
{%- if date_string is not defined -%}
    {%- set date_string = "26 Jul 2024" -%}
{%- endif -%}
{%- set system_text = "" -%}
{%- if messages[0].role == "system" -%}
    {%- set system_text = messages[0].content | trim -%}
    {%- set messages = messages[1:] -%}
{%- endif -%}
<|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: {{ date_string }}

{{ system_text }}<|eot_id|>
{%- for message in messages -%}
    {%- if message.role not in ["user", "assistant"] -%}
        {{- raise_exception("Only user and assistant roles are supported after the system message, got " ~ message.role) -}}
    {%- endif -%}
    <|start_header_id|>{{ message.role }}<|end_header_id|>{{ "\\n\\n" }}
    {{- message.content | trim }}<|eot_id|>
{%- endfor -%}
{%- if add_generation_prompt -%}
    <|start_header_id|>assistant<|end_header_id|>{{ "\\n\\n" }}
{%- endif -%}
"""

# ChatML as in Qwen2.5: a default system message when the conversation has none. Written
# with plain (non "-") tags so that trim_blocks/lstrip_blocks do the whitespace work.
CHATML = """{% if messages[0]['role'] != 'system' %}
<|im_start|>system
You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>
{% endif %}
{% for message in messages %}
    {% if message.role == 'assistant' and not loop.last %}
<|im_start|>assistant
{{ message.content }}<|im_end|>
    {% else %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

# SmolLM2's compact one-line ChatML: a default system message, string concatenation.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SMOLLM2_TOOL_USE = "{{ raise_exception('the tool_use template is not used in these tests') }}"

# [INST] format: bos, the system message folded into the first user turn, user and
# assistant strictly alternating (raise_exception otherwise), eos after each answer.
MISTRAL = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_message = none %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is not none %}
            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token }}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported!') }}
    {%- endif %}
{%- endfor %}
"""

CONFIGS = {
    "llama3": {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "chat_template": LLAMA3,
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    },
    "chatml": {
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "chat_template": CHATML,
        "model_max_length": 32768,
        "tokenizer_class": "PreTrainedTokenizerFast",
    },
    "smollm2": {
        # special tokens in the AddedToken object form some configs use
        "bos_token": {"__type": "AddedToken", "content": "<|im_start|>", "lstrip": False,
                      "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": False,
                      "normalized": False, "rstrip": False, "single_word": False},
        "chat_template": [
            {"name": "default", "template": SMOLLM2},
            {"name": "tool_use", "template": SMOLLM2_TOOL_USE},
        ],
        "model_max_length": 8192,
        "tokenizer_class": "PreTrainedTokenizerFast",
    },
    "mistral": {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "chat_template": MISTRAL,
        "model_max_length": 32768,
        "tokenizer_class": "PreTrainedTokenizerFast",
    },
}

# --- conversations -----------------------------------------------------------------

SYS_USER = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
USER_ONLY = [{"role": "user", "content": "Hello!"}]
MULTI = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "  Tell me a joke.  \n"},
]
MULTI_NO_SYS = MULTI[1:]
ENDS_WITH_ASSISTANT = MULTI_NO_SYS[:2]
UNICODE = [{"role": "user", "content": "Grüße, 世界! \"quotes\" and \\backslashes\\ 🙂\n\ttabbed"}]
QWEN_THINK_HISTORY = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nSimple arithmetic: 2+2=4.\n</think>\n\n2+2 = 4."},
    {"role": "user", "content": "And 3+3?"},
]
QWEN_THINK_LAST = QWEN_THINK_HISTORY[:2]
QWEN_REASONING_FIELD = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "2+2 = 4.", "reasoning_content": "Add the numbers."},
]
# keys in sorted order, so that Go maps (which serialize sorted) and Python dicts agree
WEATHER_TOOL = {
    "function": {
        "description": "Get the current weather in a city",
        "name": "get_weather",
        "parameters": {
            "properties": {"city": {"description": "City name", "type": "string"}},
            "required": ["city"],
            "type": "object",
        },
    },
    "type": "function",
}
# a tool whose keys are not sorted: passed to Go as json.RawMessage, order kept
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
QWEN_TOOLS = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"temp_c\": 21}"},
    {"role": "tool", "content": "{\"sky\": \"clear\"}"},
    {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
    {"role": "user", "content": "Search for the Eiffel Tower height."},
    {"role": "assistant", "content": "<think>\nI should search.\n</think>\n\nLet me search.", "tool_calls": [
        {"type": "function", "function": {"name": "search",
                                           "arguments": "{\"query\": \"Eiffel Tower height\"}"}}]},
    {"role": "tool", "content": "330 m"},
]
NOT_ALTERNATING = [
    {"role": "user", "content": "one"},
    {"role": "user", "content": "two"},
]
WITH_TOOL_ROLE = [
    {"role": "user", "content": "hi"},
    {"role": "tool", "content": "{}"},
]

CASES = [
    # Qwen3 (the real template)
    ("qwen3/system_user", "qwen3", SYS_USER, True, {}),
    ("qwen3/user_only", "qwen3", USER_ONLY, True, {}),
    ("qwen3/user_only_no_prompt", "qwen3", USER_ONLY, False, {}),
    ("qwen3/thinking_off", "qwen3", USER_ONLY, True, {"enable_thinking": False}),
    ("qwen3/thinking_on", "qwen3", SYS_USER, True, {"enable_thinking": True}),
    ("qwen3/multi_turn", "qwen3", MULTI, True, {}),
    ("qwen3/multi_turn_thinking_off", "qwen3", MULTI, True, {"enable_thinking": False}),
    ("qwen3/think_in_history", "qwen3", QWEN_THINK_HISTORY, True, {}),
    ("qwen3/think_in_last_assistant", "qwen3", QWEN_THINK_LAST, False, {}),
    ("qwen3/reasoning_content_field", "qwen3", QWEN_REASONING_FIELD, False, {}),
    ("qwen3/unicode", "qwen3", UNICODE, True, {}),
    ("qwen3/tools", "qwen3", QWEN_TOOLS, True, {"tools": [WEATHER_TOOL, SEARCH_TOOL]}),
    # Llama 3 style
    ("llama3/system_user", "llama3", SYS_USER, True, {}),
    ("llama3/user_only", "llama3", USER_ONLY, True, {}),
    ("llama3/multi_turn", "llama3", MULTI, True, {}),
    ("llama3/multi_turn_no_prompt", "llama3", MULTI, False, {}),
    ("llama3/date_string", "llama3", SYS_USER, True, {"date_string": "01 Jan 2025"}),
    ("llama3/unicode", "llama3", UNICODE, True, {}),
    ("llama3/tool_role_rejected", "llama3", WITH_TOOL_ROLE, True, {}),
    # ChatML with a default system message (Qwen2.5 shape)
    ("chatml/system_user", "chatml", SYS_USER, True, {}),
    ("chatml/user_only", "chatml", USER_ONLY, True, {}),
    ("chatml/user_only_no_prompt", "chatml", USER_ONLY, False, {}),
    ("chatml/multi_turn", "chatml", MULTI_NO_SYS, True, {}),
    ("chatml/ends_with_assistant", "chatml", ENDS_WITH_ASSISTANT, False, {}),
    # SmolLM2 style
    ("smollm2/system_user", "smollm2", SYS_USER, True, {}),
    ("smollm2/user_only", "smollm2", USER_ONLY, True, {}),
    ("smollm2/multi_turn", "smollm2", MULTI_NO_SYS, False, {}),
    # [INST] style
    ("mistral/user_only", "mistral", USER_ONLY, False, {}),
    ("mistral/system_multi_turn", "mistral", MULTI, False, {}),
    ("mistral/not_alternating", "mistral", NOT_ALTERNATING, False, {}),
]

# --- single-feature templates ------------------------------------------------------

MSGS = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]

JINJA_CASES = [
    # whitespace control with trim_blocks and lstrip_blocks
    ("ws/trim_blocks", "{% if true %}\nyes\n{% endif %}\nend", {}),
    ("ws/lstrip_blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc", {}),
    ("ws/lstrip_not_after_text", "a {% if true %}b{% endif %} c", {}),
    ("ws/dash_both", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", {}),
    ("ws/expression_keeps_newline", "{{ 'x' }}\n{{ 'y' }}\n", {}),
    ("ws/trailing_newline_dropped", "a\n", {}),
    ("ws/two_trailing_newlines", "a\n\n", {}),
    ("ws/comment", "a\n{# note #}\nb {#- x -#} c", {}),
    ("ws/plus_modifier", "a\n    {%+ if true %}b{% endif %}", {}),
    ("ws/crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("ws/raw", "{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("ws/inline_after_expression", "{% for m in messages %}{{ m.role }} {% endfor %}|", {"messages": MSGS}),
    ("ws/inline_after_block", "{% if true %}  {% endif %}|\t{% if true %}\t{% endif %}|", {}),
    ("ws/inline_comment", "{{ 'a' }} {# c #}b", {}),
    ("ws/inline_after_string_with_tag", "{{ '{%' ~ \"%}\" ~ '{{' }} {% if true %}x{% endif %}", {}),
    ("ws/inline_after_raw", "{% raw %}{% x %}{% endraw %} {% if true %}y{% endif %}", {}),
    ("ws/inline_after_dict_literal", "{{ {'a': {'b': 1}} | length }} {% if true %}z{% endif %}", {}),
    ("ws/line_start_after_block_newline", "{% if true %}\n  {% if true %}x{% endif %}\n{% endif %}", {}),
    # scoping
    ("scope/set_in_for_does_not_leak", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}", {}),
    ("scope/set_in_if_leaks", "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", {}),
    ("scope/namespace", "{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                        "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("scope/set_block", "{% set x %}a{{ 1 + 1 }}b{% endset %}[{{ x }}]", {}),
    ("scope/override_messages", "{% set messages = messages[1:] %}{% for m in messages %}{{ m.role }} {% endfor %}",
     {"messages": MSGS}),
    ("scope/macro", "{% macro tag(name, body='x') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}"
                    "{{ tag('a') }}{{ tag('b', body='y') }}{{ tag('c', 'z') }}", {}),
    ("scope/with", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}", {}),
    # loops
    ("loop/variables", "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/"
                       "{{ loop.revindex0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }};{% endfor %}",
     {"messages": MSGS}),
    ("loop/previtem_nextitem", "{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ x }}-{{ loop.nextitem }};{% endfor %}", {}),
    ("loop/reverse_slice", "{% for m in messages[::-1] %}{{ m.content }}{% endfor %}", {"messages": MSGS}),
    ("loop/reverse_filter", "{% for m in messages | reverse %}{{ m.content }}{% endfor %}", {"messages": MSGS}),
    ("loop/break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
                            "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("loop/else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("loop/filter_condition", "{% for m in messages if m.role == 'user' %}{{ m.content }}{{ loop.index }}{% endfor %}",
     {"messages": MSGS}),
    ("loop/unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2, "c": 3}}),
    ("loop/over_dict", "{% for k in d %}{{ k }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("loop/range_forms", "{{ range(3) | list }}{{ range(1, 4) | list }}{{ range(10, 0, -3) | list }}", {}),
    ("loop/cycle", "{% for x in 'abc' %}{{ loop.cycle('odd', 'even') }}{% endfor %}", {}),
    ("loop/nested_loop_vars", "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    # indexing and slicing
    ("index/negative", "{{ messages[-1].content }}{{ messages[-2]['role'] }}", {"messages": MSGS}),
    ("index/negative_single", "{{ messages[-1].role }} {{ (messages | selectattr('role', 'equalto', 'user') | list)[-1].content }} "
                              "{{ 'one'.split()[-1] }} {{ (messages | map(attribute='role') | list)[-1] }} {{ messages[-2] is defined }}",
     {"messages": [{"role": "user", "content": "only"}]}),
    ("index/negative_list_literal", "{{ [5][-1] }}", {}),
    ("index/out_of_range", "[{{ messages[5] }}][{{ messages[-5] }}]", {"messages": MSGS}),
    ("index/string", "{{ 'hello'[1] }}{{ 'hello'[-1] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ 'hello'[:-2] }}", {}),
    ("index/unicode_string", "{{ 'héllo'[1:3] }}{{ 'héllo' | length }}{{ 'héllo'[::-1] }}", {}),
    ("index/unicode_char", "{{ 'héllo'[1] }}", {}),
    ("index/list_slices", "{{ [1, 2, 3, 4, 5][1:4] }}{{ [1, 2, 3, 4, 5][::2] }}{{ [1, 2, 3][5:] }}", {}),
    ("index/attr_and_item", "{{ d.a }}{{ d['a'] }}{{ d.get('a') }}{{ d.get('zz', 'dflt') }}", {"d": {"a": "x"}}),
    # operators
    ("op/concat_and_tilde", "{{ 'a' + 'b' }}{{ 'a' ~ 1 ~ 2.5 }}{{ 1 ~ 2 }}", {}),
    ("op/tilde_none", "{{ 'a' ~ none }}", {}),
    ("op/arithmetic", "{{ 7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 1 + 2 * 3 }} {{ (messages | length) - 1 }}", {"messages": MSGS}),
    ("op/negative_floor_div_mod", "{{ -7 // 2 }} {{ -7 % 3 }}", {}),
    ("op/power", "{{ 2 ** 10 }}", {}),
    ("op/float_printing", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 3 / 1 }} {{ 10 / 4 }}", {}),
    ("op/comparisons", "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1] == [1] }}", {}),
    ("op/in", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in d }} {{ 'z' not in d }} {{ '</think>' in messages[0].content }}",
     {"d": {"k": 1}, "messages": MSGS}),
    ("op/logic", "{{ true and false }} {{ true or false }} {{ not true }} {{ none or 'x' }} {{ '' or 'y' }} {{ 'a' and 'b' }}", {}),
    ("op/ternary", "{{ 'y' if messages else 'n' }}{{ 'y' if [] else 'n' }}{{ 'only-if' if false }}", {"messages": MSGS}),
    ("op/filter_precedence", "{{ 'a' + '  b  ' | trim + 'c' }}{{ -1 | abs }}", {}),
    ("op/parity", "{{ (messages | length) % 2 == 0 }} {{ (loop_index0 % 2 == 0) != (role == 'user') }}",
     {"messages": MSGS, "loop_index0": 1, "role": "user"}),
    ("op/bool_equals_int", "{{ true == 1 }}", {}),
    ("op/chained_comparison", "{{ 0 < n < 5 }} {{ 1 < n > 5 }}", {"n": 3}),
    ("op/not_in_precedence", "{{ not 'a' in 'abc' }} {{ not x is defined }} {{ not (true or false) }}", {}),
    ("op/unary_minus", "{{ -n }} {{ -(n + 1) }} {{ 5 - -n }}", {"n": 3}),
    ("op/string_repeat", "{{ '-' * 3 }}{{ 2 * 'ab' }}", {}),
    ("op/list_concat", "{{ [1] + [2, 3] }} {{ (messages + [{'role': 'x'}]) | length }}", {"messages": MSGS}),
    ("op/tuple_literal", "{{ (1, 2) }} {{ 2 in (1, 2) }} {{ ('a',) }}", {}),
    ("op/dict_equality", "{% set us = messages | selectattr('role', 'equalto', 'user') | list %}"
                         "{% for m in messages %}{{ m == us[-1] }},{% endfor %}", {"messages": MSGS}),
    ("op/index_arithmetic", "{% for m in messages %}{% if not loop.last %}{{ messages[loop.index0 + 1].role }},{% endif %}{% endfor %}",
     {"messages": MSGS}),
    ("op/call_then_index", "{{ (messages | list)[0].role }} {{ 'a b'.split()[1] }} {{ d.items() | list | length }}",
     {"messages": MSGS, "d": {"a": 1}}),
    ("op/inline_if_parenthesized", "{{ 'p' + ('a' if x else 'b') + 'q' }}", {"x": True}),
    ("op/inline_if_nested_parens", "{% set y = 'p' ~ (('a' if x else 'b') if z else 'c') %}{{ y }}", {"x": False, "z": True}),
    ("op/inline_if_in_call", "{{ ['a', 'b'] | join('-' if x else '+') }} {{ '{}!'.format('y' if x else 'n') }}", {"x": True}),
    ("op/inline_if_in_list", "{{ [1 if x else 2, 3] }} {{ {'k': 'v' if x else 'w'} }}", {"x": False}),
    ("op/inline_if_no_else", "[{{ ('a' if x) }}]", {"x": False}),
    ("op/inline_if_top_level", "{{ 'a' if x else 'b' }}{% set y = 1 if x else 2 %}{{ y }}{{ 'c' if not x }}", {"x": False}),
    ("op/inline_if_lazy", "{{ ('none' if n is none else n.upper()) }}", {"n": None}),
    ("op/inline_if_in_if_condition", "{% if ('a' if x else '') %}yes{% else %}no{% endif %}", {"x": True}),
    ("op/inline_if_in_for", "{% for i in ([1, 2] if x else [3]) %}{{ i }}{% endfor %}", {"x": True}),
    ("op/inline_if_in_loop_body", "{% for m in messages %}{{ (m.role if loop.first else '|' ~ m.role) }}{% endfor %}",
     {"messages": MSGS}),
    ("op/method_on_parenthesized", "{{ (s | default('', true)).replace('a', 'b').strip() }}|"
                                   "{% if (s ~ 'x').endswith('x') %}y{% endif %}|{{ ('a,b').split(',') | length }}",
     {"s": " a cat "}),
    ("op/method_on_call_result", "{{ 'a-b'.replace('-', ' ').split()[-1].upper() }}", {}),
    ("op/inline_if_in_elif", "{% if false %}a{% elif ('x' if y else '') %}b{% endif %}", {"y": True}),
    ("op/str_plus_dict", "{{ 'a' + d }}", {"d": {"k": 1}}),
    ("op/attribute_of_undefined", "[{{ nothing.attr }}]", {}),
    ("op/none_is_defined", "{{ tools is defined }} {{ missing is none }}", {"tools": None}),
    ("op/set_tuple_unpack", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("op/test_with_args", "{{ 9 is divisibleby(3) }} {{ 'x' is in ['x'] }}", {}),
    # tests
    ("test/defined", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ d.k is defined }} {{ d.z is defined }}",
     {"x": 1, "d": {"k": 1}}),
    ("test/none", "{{ n is none }} {{ 0 is none }} {{ n is not none }}", {"n": None}),
    ("test/true_false", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ none is false }} "
                        "{{ flag is false }}", {"flag": False}),
    ("test/types", "{{ 's' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ 1 is integer }} "
                   "{{ 1.5 is float }} {{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ 's' is iterable }} "
                   "{{ l is sequence }} {{ 's' is sequence }} {{ true is boolean }} {{ 1 is boolean }}",
     {"d": {"a": 1}, "l": [1]}),
    ("test/misc", "{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'ab' is lower }} {{ 'AB' is upper }} "
                  "{{ 2 is eq 2 }} {{ 3 is gt 2 }}", {}),
    ("test/string_content", "{% if messages[0].content is string %}str{% else %}other{% endif %}", {"messages": MSGS}),
    # filters
    ("filter/length_count", "{{ messages | length }} {{ 'abc' | length }} {{ d | length }} {{ messages | count }}",
     {"messages": MSGS, "d": {"a": 1}}),
    ("filter/trim", "[{{ '  a b \n\t' | trim }}][{{ 'xxaxx' | trim('x') }}]", {}),
    ("filter/first_last", "{{ messages | first | attr('role') }} {{ (messages | last).content }} {{ 'abc' | first }}",
     {"messages": MSGS}),
    ("filter/join", "{{ ['a', 'b'] | join(', ') }}{{ [1, 2] | join }}{{ messages | map(attribute='role') | join('|') }}",
     {"messages": MSGS}),
    ("filter/map_select", "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}"
                          "{{ messages | rejectattr('role', 'equalto', 'user') | list | length }}", {"messages": MSGS}),
    ("filter/select_reject", "{{ [1, 2, 3, 4] | select('odd') | list }}{{ [1, 2, 3, 4] | reject('odd') | list }}", {}),
    ("filter/default", "{{ x | default('d') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ d.k | default(0) }}",
     {"d": {}}),
    ("filter/default_none", "{{ n | default('nn') }}", {"n": None}),
    ("filter/case", "{{ 'hello world' | upper }} {{ 'HeLLo' | lower }} {{ 'hello world' | title }} {{ 'hello World' | capitalize }}", {}),
    ("filter/replace", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }}", {}),
    ("filter/string_int_float", "{{ 3 | string }}{{ '42' | int + 1 }} {{ '2.5' | float }} {{ 2.7 | int }} {{ 'x' | int }}", {}),
    ("filter/list_unique_sort", "{{ 'cab' | list }} {{ [3, 1, 2, 1] | unique | list }} {{ [3, 1, 2] | sort }} "
                                "{{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }}", {}),
    ("filter/sort_attribute", "{{ people | sort(attribute='age') | map(attribute='name') | join(',') }}",
     {"people": [{"name": "b", "age": 30}, {"name": "a", "age": 20}]}),
    ("filter/items_dictsort", "{{ d | items | list }} {{ d | dictsort }}", {"d": {"b": 1, "a": 2}}),
    ("filter/indent", "{{ 'a\nb\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}", {}),
    ("filter/wordcount_center", "{{ 'a b  c' | wordcount }}[{{ 'ab' | center(6) }}]", {}),
    ("filter/batch_slice_sum", "{{ [1, 2, 3] | sum }} {{ [1, 2, 3, 4, 5] | batch(2) | list }}", {}),
    ("filter/max_min_abs_round", "{{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }}", {}),
    ("filter/format", "{{ '%s-%d' | format('a', 3) }}", {}),
    ("filter/safe_escape", "{{ '<b>&' | safe }} {{ '<b>' | e }}", {}),
    # tojson
    ("tojson/basic", "{{ d | tojson }}", {"d": {"b": [1, 2.5, True, None], "a": "x\"y\\z\n\u00e9\u4e16 <tag> & 'q'"}}),
    ("tojson/indent", "{{ d | tojson(indent=4) }}", {"d": {"name": "f", "args": {"x": [1, 2], "y": {}}, "e": []}}),
    ("tojson/indent_string", "{{ [1, {'a': 2}] | tojson(indent='\t') }}", {}),
    ("tojson/sort_keys", "{{ d | tojson(sort_keys=true) }}", {"d": {"b": 1, "a": {"d": 1, "c": 2}}}),
    ("tojson/separators", "{{ d | tojson(separators=(',', ':')) }}", {"d": {"a": [1, 2], "b": "c"}}),
    ("tojson/ensure_ascii", "{{ 'é世🙂\u007f' | tojson(ensure_ascii=true) }} {{ 'é' | tojson }}", {}),
    ("tojson/scalars", "{{ 1 | tojson }} {{ 1.0 | tojson }} {{ 1e-7 | tojson }} {{ 123456789012345678.0 | tojson }} "
                       "{{ none | tojson }} {{ true | tojson }} {{ 's' | tojson }} {{ [] | tojson }} {{ {} | tojson }}", {}),
    ("tojson/template_dict_literal", "{{ {'z': 1, 'a': [true, none]} | tojson }}", {}),
    ("tojson/control_chars", "{{ s | tojson }}", {"s": "\u0001\u001f\b\f\r\t"}),
    ("tojson/tools_loop", "{% for t in tools %}{{ t | tojson }}\n{% endfor %}", {"tools": [WEATHER_TOOL, SEARCH_TOOL]}),
    # python string methods
    ("str/startswith_endswith", "{{ s.startswith('<tool') }} {{ s.endswith('>') }} {{ s.startswith(('x', '<')) }} "
                                "{{ s.endswith('nope') }}", {"s": "<tool_response>"}),
    ("str/split", "{{ s.split('</think>') }} {{ s.split('</think>')[-1] }} {{ 'a  b c'.split() }} "
                  "{{ 'a,b,c'.split(',', 1) }} {{ 'abc'.split('x') }}", {"s": "<think>r</think>answer"}),
    ("str/rsplit", "{{ 'a,b,c'.rsplit(',', 1) }}", {}),
    ("str/strip_family", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ '\nx\n'.strip('\n') }}]"
                         "[{{ 'xxaxx'.lstrip('x') }}][{{ 'xxaxx'.rstrip('x') }}][{{ 'abcba'.strip('ab') }}]",
     {"s": "  \n hi \t "}),
    ("str/qwen_think_split", "{% set c = m.split('</think>')[-1].lstrip('\\n') %}"
                             "{% set r = m.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
                             "[{{ r }}][{{ c }}][{{ r.strip('\\n') }}]", {"m": "<think>\nreason\nmore\n</think>\n\nanswer"}),
    ("str/case_methods", "{{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ 'ab cd'.title() }} {{ 'ab'.capitalize() }}", {}),
    ("str/replace_find_count", "{{ 'aXbXc'.replace('X', '-') }} {{ 'abc'.find('c') }} {{ 'abc'.find('z') }} "
                               "{{ 'aaa'.count('a') }}", {}),
    ("str/join_method", "{{ ', '.join(['a', 'b']) }}", {}),
    ("str/predicates", "{{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ ' '.isspace() }} {{ 'Ab'.isupper() }}", {}),
    ("str/format_method", "{{ '{} and {}'.format('a', 'b') }} {{ '{x}!'.format(x=1) }}", {}),
    ("str/multiline_literal", "{{ 'line1\nline2' }}|{{ \"tab\\there\" }}", {}),
    ("str/escapes", r"""{{ 'a\tb\\c\'d"e\x41\u00e9\101\q\U0001F642' }}|{{ "x\"y" }}""", {}),
    ("str/backslash_newline", "{{ 'one \\\ntwo' }}|{{ \"a\\\n\\\nb\" }}", {}),
    ("str/ends_with_escaped_backslash", r"""{{ 'x\\' }}|{{ "y\\" ~ 'z' }}""", {}),
    ("str/escape_quotes_in_replace", r"""{{ s.replace('"', '\"') }}|{{ s | replace("\"", "\\\"") }}""",
     {"s": 'say "hi"'}),
    # dict methods keep order
    ("dict/keys_values_items", "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
     {"d": {"b": 1, "a": 2, "c": 3}}),
    ("dict/literal_items", "{% for k, v in {'z': 1, 'a': 2}.items() %}{{ k }}{{ v }}{% endfor %}", {}),
    ("dict/nested_access", "{{ t.function.name }} {{ t['function']['parameters']['required'][0] }}",
     {"t": WEATHER_TOOL}),
    # printing values
    ("print/list", "{{ [1, 'a', true] }}", {}),
    ("print/bool_and_none_literals", "{{ true }} {{ True }} {{ false }} {{ none is none }} {{ None is none }}", {}),
    # globals
    ("global/raise_exception", "a{{ raise_exception('bad conversation: ' ~ n) }}b", {"n": 3}),
    ("global/raise_in_loop", "{% for m in messages %}{% if m.role == 'assistant' %}"
                             "{{ raise_exception('no assistant at ' ~ loop.index0) }}{% endif %}{% endfor %}",
     {"messages": MSGS}),
    ("global/strftime_now_defined", "{{ strftime_now is defined }}", {}),
    ("global/generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}"
                                "{{ m.content }}{% endgeneration %}{% else %}[{{ m.content }}]{% endif %}{% endfor %}",
     {"messages": MSGS}),
    # errors
    ("error/unclosed_block", "{% if true %}never closed", {}),
    ("error/unknown_filter", "{{ 'a' | no_such_filter }}", {}),
    ("error/bad_expression", "{{ 1 + }}", {}),
    ("error/unknown_tag", "{% frobnicate %}", {}),
    ("error/mutating_method", "{% set l = [1] %}{{ l.append(2) }}", {}),
    ("error/range_too_big", "{{ range(200000) | length }}", {}),
    ("error/attribute_of_undefined_call", "{{ nothing.upper() }}", {}),
]


def python_version_info():
    return {"transformers": transformers.__version__, "jinja2": jinja2.__version__,
            "python": sys.version.split()[0]}


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")


def error_text(e):
    return f"{type(e).__name__}: {e}"


def main():
    os.makedirs(OUT, exist_ok=True)
    with gzip.open(os.path.join(SHARED_QWEN3, "tokenizer.json.gz"), "rb") as f:
        tokenizer_json = f.read()

    # the configs
    shutil.copyfile(os.path.join(SHARED_QWEN3, "tokenizer_config.json"),
                    os.path.join(OUT, "qwen3_tokenizer_config.json"))
    for name, cfg in CONFIGS.items():
        write_json(os.path.join(OUT, f"{name}_tokenizer_config.json"), cfg)

    # one tokenizer per config, from a folder holding the config and a tokenizer.json
    tokenizers = {}
    for name in ["qwen3", *CONFIGS]:
        d = tempfile.mkdtemp(prefix=f"chat-{name}-")
        with open(os.path.join(d, "tokenizer.json"), "wb") as f:
            f.write(tokenizer_json)
        shutil.copyfile(os.path.join(OUT, f"{name}_tokenizer_config.json"), os.path.join(d, "tokenizer_config.json"))
        tokenizers[name] = AutoTokenizer.from_pretrained(d)
        shutil.rmtree(d)

    cases = []
    for case_name, tmpl, messages, add_gen, kwargs in CASES:
        case = {"name": case_name, "config": f"{tmpl}_tokenizer_config.json", "messages": messages,
                "add_generation_prompt": add_gen}
        extra = dict(kwargs)
        if "enable_thinking" in extra:
            case["enable_thinking"] = extra.pop("enable_thinking")
        if extra:
            case["extra"] = extra
        try:
            case["expected"] = tokenizers[tmpl].apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_gen, **kwargs)
        except Exception as e:  # noqa: BLE001 - recorded as the expected outcome
            case["error"] = error_text(e)
        cases.append(case)
    write_json(os.path.join(OUT, "cases.json"), {"generated_by": "scripts/gen_chat_fixtures.py",
                                                 "versions": python_version_info(), "cases": cases})

    jcases = []
    for case_name, src, variables in JINJA_CASES:
        case = {"name": case_name, "template": src, "vars": variables}
        try:
            case["expected"] = _compile_jinja_template(src).render(**variables)
        except Exception as e:  # noqa: BLE001
            case["error"] = error_text(e)
        jcases.append(case)
    write_json(os.path.join(OUT, "jinja_cases.json"), {"generated_by": "scripts/gen_chat_fixtures.py",
                                                       "versions": python_version_info(), "cases": jcases})
    print(f"wrote {len(cases)} chat cases and {len(jcases)} jinja cases to {OUT}")


if __name__ == "__main__":
    main()
