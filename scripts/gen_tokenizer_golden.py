"""Golden Llama-3 encodings for model/tokenizer tests.

Encodes the texts of ../shared/data/tokenizers/golden_encodings.jsonl with the Hugging Face
`tokenizers` Python package (the reference implementation) and the Meta-Llama-3-8B-Instruct
tokenizer.json that ships in the github.com/daulet/tokenizers v1.22.1 Go module, with and
without special tokens. Run: .venv/bin/python scripts/gen_tokenizer_golden.py MODULE_DIR
(MODULE_DIR: `go list -m -f '{{.Dir}}' github.com/daulet/tokenizers`).
"""
import json
import sys

import tokenizers

module = sys.argv[1]
tok = tokenizers.Tokenizer.from_file(f"{module}/test/data/Meta-Llama-3-8B-Instruct.json")
texts = [json.loads(l)["text"] for l in open("../shared/data/tokenizers/golden_encodings.jsonl")]
with open("testdata/tokenizers/llama3_golden.jsonl", "w") as f:
    for t in texts:
        rec = {"text": t, "ids": tok.encode(t, add_special_tokens=False).ids,
               "ids_special": tok.encode(t, add_special_tokens=True).ids}
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
print("tokenizers", tokenizers.__version__, file=sys.stderr)
