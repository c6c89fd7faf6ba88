"""Checks that Hugging Face transformers loads pioneer-nano as Pioneer writes it, and that
both agree: the tokenizer's ids on the held-out text and the held-out perplexity over
its first 16,384 tokens (64 windows of 256, the slice data/nano_test.go checks).

Usage: .venv/bin/python scripts/check_nano.py [data/models/pioneer-nano] [testdata/nano/heldout.txt]
"""

import math
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder = sys.argv[1] if len(sys.argv) > 1 else "data/models/pioneer-nano"
heldout = sys.argv[2] if len(sys.argv) > 2 else "testdata/nano/heldout.txt"
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
print(type(model).__name__, sum(p.numel() for p in model.parameters()), "parameters")
text = open(heldout, encoding="utf-8").read()
ids = tok(text, add_special_tokens=False)["input_ids"]
print("held-out tokens", len(ids))
T, windows = 256, 16384 // 256
x = torch.tensor(ids[: windows * T + 1])
total = 0.0
with torch.no_grad():
    for w in range(0, windows, 8):
        n = min(8, windows - w)
        inp = torch.stack([x[(w + b) * T:(w + b + 1) * T] for b in range(n)])
        tgt = torch.stack([x[(w + b) * T + 1:(w + b + 1) * T + 1] for b in range(n)])
        logits = model(input_ids=inp).logits
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum").item()
loss = total / (windows * T)
print(f"first 16,384 held-out tokens: loss {loss:.5f}, perplexity {math.exp(loss):.4f}")
out = model.generate(torch.tensor([tok("The king", add_special_tokens=False)["input_ids"]]), max_new_tokens=20, do_sample=False)
print("greedy:", repr(tok.decode(out[0])))
