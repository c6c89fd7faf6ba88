"""openai_client_check.py URL KEY PROMPT — the official openai Python client against a
running `pioneer serve` (serve's TestOpenAIClient starts one): models, completions and chat,
streamed and not, an adapter chosen by model name, and the errors the client raises.
Prints one JSON object of what it got; the Go test checks it."""
import json
import sys

import openai

url, key, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
c = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
out = {"models": sorted(m.id for m in c.models.list())}
for model in ("nano", "zebra"):
    r = c.completions.create(model=model, prompt=prompt, max_tokens=12)
    out[model] = r.choices[0].text
    out[model + "_usage"] = r.usage.completion_tokens
s = c.completions.create(model="zebra", prompt=prompt, max_tokens=12, stream=True)
out["zebra_stream"] = "".join(ch.choices[0].text for ch in s)
msgs = [{"role": "user", "content": "Tell me a story."}]
r = c.chat.completions.create(model="nano", messages=msgs, max_tokens=10)
out["chat"] = r.choices[0].message.content
out["chat_role"] = r.choices[0].message.role
s = c.chat.completions.create(model="nano", messages=msgs, max_tokens=10, stream=True)
out["chat_stream"] = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
errors = {}
for name, call in {
    "unknown_model": lambda: c.completions.create(model="gpt-9", prompt="x", max_tokens=2),
    "bad_request": lambda: c.completions.create(model="nano", prompt="x", max_tokens=0),
    "wrong_key": lambda: openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list(),
}.items():
    try:
        call()
        errors[name] = "no error"
    except openai.APIStatusError as e:
        errors[name] = [type(e).__name__, e.status_code]
out["errors"] = errors
print(json.dumps(out))
