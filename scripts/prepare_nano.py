"""Prepares pioneer-nano's pretraining data and trains its tokenizer.

Reads the corpora in ../shared/data/corpus (Tiny Shakespeare, War and Peace, WikiText-2
valid+test), normalises line endings, holds out the last 5 % of each corpus (cut at a line
boundary) and writes

  OUT/train.txt      the training text, corpora separated by <|endoftext|>
  OUT/heldout.txt    the held-out text, the same way
  OUT/tokenizer.json a byte-level BPE (8,192 entries) trained on train.txt only
  OUT/tokenizer_config.json, OUT/special_tokens_map.json

Usage (from the repository root, after scripts/reference-env.sh):
  .venv/bin/python scripts/prepare_nano.py --corpus ../shared/data/corpus --out runs/nano-data
"""

import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

EOS = "<|endoftext|>"
SPECIAL = [EOS, "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]
VOCAB = 8192
HELDOUT = 0.05

# A plain chat format for the base model: role marker, newline, content, end of text.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|endoftext|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def read(path):
    with open(path, encoding="utf-8-sig") as f:  # War and Peace starts with a BOM
        return f.read().replace("\r\n", "\n")


def split(text):
    lines = text.splitlines(keepends=True)
    cut = len(lines) - max(1, int(len(lines) * HELDOUT))
    return "".join(lines[:cut]), "".join(lines[cut:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="../shared/data/corpus")
    ap.add_argument("--out", default="runs/nano-data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    corpora = [
        ("tinyshakespeare", [os.path.join(a.corpus, "tinyshakespeare", "input.txt")]),
        ("warpeace", [os.path.join(a.corpus, "warpeace", "input.txt")]),
        ("wikitext2", [os.path.join(a.corpus, "wikitext2", n) for n in ("valid.txt", "test.txt")]),
    ]
    train, held = [], []
    for name, paths in corpora:
        t, h = split("".join(read(p) for p in paths))
        train.append(t)
        held.append(h)
        print(f"{name}: {len(t):,} train / {len(h):,} held-out characters")
    sep = "\n" + EOS + "\n"
    with open(os.path.join(a.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write(sep.join(train))
    with open(os.path.join(a.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(sep.join(held))

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train, trainer=trainer)
    tok.save(os.path.join(a.out, "tokenizer.json"))

    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOS,
        "eos_token": EOS,
        "pad_token": "<|pad|>",
        "unk_token": None,
        "add_bos_token": False,
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": EOS, "eos_token": EOS, "pad_token": "<|pad|>"}, f, indent=2)
        f.write("\n")
    ids = tok.encode("".join(train)).ids
    hids = tok.encode("".join(held)).ids
    print(f"tokenizer: {tok.get_vocab_size():,} entries; train {len(ids):,} tokens, held-out {len(hids):,} tokens")


if __name__ == "__main__":
    main()
