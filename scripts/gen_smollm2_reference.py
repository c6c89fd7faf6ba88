#!/usr/bin/env python3
"""gen_smollm2_reference.py — what transformers makes of the SmolLM2-135M-Instruct GGUF.

    bash scripts/fetch-smollm2.sh
    $(bash scripts/reference-env.sh) scripts/gen_smollm2_reference.py

Loads ~/.cache/pioneer/models/SmolLM2-135M-Instruct.Q4_1.gguf with transformers'
own GGUF support (from_pretrained(..., gguf_file=...): dequantized to float32 by the
gguf package) and writes testdata/gguf/smollm2_reference.json:
  - tokens: the ids of the golden strings (../shared/data/tokenizers/golden_encodings.jsonl)
    and of chat renderings (apply_chat_template, generation prompt added);
  - prompts: for a few prompts, their ids, the last position's logits at fixed sampled
    vocabulary ids plus the top 10, the log-sum-exp over the vocabulary, and 24 greedy
    new tokens. Float32 on the CPU, one thread.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cache = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
path = os.path.join(cache, "pioneer", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
torch.set_num_threads(1)

tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
model.eval()

golden = [json.loads(l)["text"] for l in open(os.path.join(root, "..", "shared", "data", "tokenizers", "golden_encodings.jsonl"))]
chats = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Classify: 'I lost my card'"},
     {"role": "assistant", "content": "lost_or_stolen_card"}, {"role": "user", "content": "And 'top up failed'?"}],
]
tokens = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in golden]
renders = []
for messages in chats:
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    renders.append({"messages": messages, "text": text, "ids": tok(text, add_special_tokens=False)["input_ids"]})

rng = np.random.default_rng(7)
sampled = sorted(int(i) for i in rng.choice(model.config.vocab_size, 64, replace=False))
prompts = []
texts = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village,",
         renders[0]["text"]]
for text in texts:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].double()
        out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=2)
    top = torch.topk(logits, 10)
    prompts.append({"text": text, "ids": ids, "sampled_logits": [float(logits[i]) for i in sampled],
                    "top_ids": [int(i) for i in top.indices], "top_logits": [float(v) for v in top.values],
                    "logsumexp": float(torch.logsumexp(logits, 0)), "greedy": [int(i) for i in out[0, len(ids):]]})

with open(os.path.join(root, "testdata", "gguf", "smollm2_reference.json"), "w") as f:
    json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "sampled_ids": sampled,
               "tokens": tokens, "chats": renders, "prompts": prompts}, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote testdata/gguf/smollm2_reference.json", file=sys.stderr)
