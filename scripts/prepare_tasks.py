"""Converts the intent and entity datasets Pioneer bundles into its task format.

Reads ../shared/data (see its SOURCES.md) and writes data/tasks/<name>/{train,validation,
test}.jsonl. Every line has an "id"; classification lines have "text" and "label";
entity lines have "text" (the tokens joined by single spaces; CoNLL tokens hold no spaces,
so splitting on spaces gives them back), "tags" (IOB2, one per token, space-separated) and
"entities" ([{"type", "text"}] in order of appearance). Test splits are copied as they
are, in their original order. Where a dataset has no validation split (Banking77), 10 % of
its training split, drawn with a fixed seed and stratified by label, becomes one.

Usage: python3 scripts/prepare_tasks.py [--shared ../shared/data] [--out data/tasks]
(standard library only).
"""

import argparse
import csv
import json
import os
import random


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows):,} lines")


def clinc(src, out):
    d = json.load(open(os.path.join(src, "intent", "clinc150", "data_full.json")))
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        write(os.path.join(out, f"{name}.jsonl"),
              [{"id": f"clinc150-{name}-{i}", "text": t, "label": l} for i, (t, l) in enumerate(d[split])])
    labels = sorted({l for _, l in d["train"]})
    return labels


def banking(src, out):
    def read(name):
        with open(os.path.join(src, "intent", "banking77", name), newline="", encoding="utf-8") as f:
            return [(r["text"], r["category"]) for r in csv.DictReader(f)]

    train, test = read("train.csv"), read("test.csv")
    rng = random.Random(77)
    by = {}
    for i, (t, l) in enumerate(train):
        by.setdefault(l, []).append(i)
    val = set()
    for l in sorted(by):
        idx = by[l]
        val.update(rng.sample(idx, max(1, round(len(idx) * 0.1))))
    rows = [{"id": f"banking77-train-{i}", "text": t, "label": l} for i, (t, l) in enumerate(train)]
    write(os.path.join(out, "train.jsonl"), [r for i, r in enumerate(rows) if i not in val])
    write(os.path.join(out, "validation.jsonl"), [r for i, r in enumerate(rows) if i in val])
    write(os.path.join(out, "test.jsonl"),
          [{"id": f"banking77-test-{i}", "text": t, "label": l} for i, (t, l) in enumerate(test)])
    return json.load(open(os.path.join(src, "intent", "banking77", "categories.json")))


def conll_sentences(path):
    sent = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                if sent:
                    yield sent
                sent = []
                continue
            cols = line.split(" ")
            if cols[0] == "-DOCSTART-":
                continue
            sent.append((cols[0], cols[-1]))
    if sent:
        yield sent


def entities(tokens, tags):
    out, cur = [], None
    for tok, tag in zip(tokens, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (cur is None or cur["type"] != tag[2:])):
            cur = {"type": tag[2:], "text": tok}
            out.append(cur)
        elif tag.startswith("I-"):
            cur["text"] += " " + tok
        else:
            cur = None
    return out


def conll(src, out):
    for split, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        rows = []
        for i, s in enumerate(conll_sentences(os.path.join(src, "ner", "conll2003", "en", f"{split}.txt"))
                               if os.path.isdir(os.path.join(src, "ner", "conll2003", "en"))
                               else conll_sentences(os.path.join(src, "ner", "conll2003", f"{split}.txt"))):
            toks = [t for t, _ in s]
            tags = [g for _, g in s]
            rows.append({"id": f"conll2003-{name}-{i}", "text": " ".join(toks), "tags": " ".join(tags),
                         "entities": entities(toks, tags)})
        write(os.path.join(out, f"{name}.jsonl"), rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--out", default="data/tasks")
    a = ap.parse_args()
    for name, fn in (("clinc150", clinc), ("banking77", banking), ("conll2003", conll)):
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        labels = fn(a.shared, d)
        if labels:
            with open(os.path.join(d, "labels.txt"), "w") as f:
                f.write("\n".join(labels) + "\n")


if __name__ == "__main__":
    main()
