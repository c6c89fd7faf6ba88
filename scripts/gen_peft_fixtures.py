"""gen_peft_fixtures.py: writes the LoRA (PEFT) reference fixtures under testdata/peft/.

What it makes
    testdata/peft/<case>/ for two cases, each a LoRA adapter made with Hugging Face
    PEFT on one of the tiny random base models in testdata/models/:

    llama_all        base testdata/models/llama; r=4, lora_alpha=8 on q/k/v/o and
                     gate/up/down projections (plain LoRA scaling alpha/r).
    qwen3_qv_rslora  base testdata/models/qwen3; r=2, lora_alpha=4 on q_proj and
                     v_proj with use_rslora=True (scaling alpha/sqrt(r)), and
                     rank_pattern={"v_proj": 3}, alpha_pattern={"v_proj": 6}.

    Both use init_lora_weights=False, so PEFT keeps the default nn.Linear
    initialisation of lora_A and lora_B (lora_B is not zero and the adapter really
    changes the logits; the script checks this). Each case folder holds:

    adapter/adapter_config.json, adapter/adapter_model.safetensors
        exactly what PeftModel.save_pretrained writes (the model card README.md it
        also writes is deleted). The base model is loaded by its path relative to
        the repository root, so base_model_name_or_path is e.g.
        "testdata/models/llama".
    reference.json
        versions; the LoRA scaling per target module suffix as PEFT computed it;
        prompts 0 and 1 of the base model's reference.json; the full [T][V]
        logits of those prompts with the adapter active (eval mode); the largest
        |logit| difference between merge_and_unload() and the adapter; and one
        training step: a [2][8] batch (train_input_ids, train_labels, labels in
        the Hugging Face convention: the ids themselves, the model shifts them
        internally; -100 is ignored) with the loss the Hugging Face model returns.
    grads.safetensors
        the gradient of that loss for every LoRA parameter (only the LoRA
        parameters require grad), under the tensor names of
        adapter_model.safetensors.
    updated.safetensors
        the LoRA weights after one torch.optim.AdamW step (lr 1e-2, betas
        (0.9, 0.999), eps 1e-8, weight_decay 0.01) from the weights in
        adapter/adapter_model.safetensors, same tensor names.

    The script then reloads each adapter onto a fresh base model with
    PeftModel.from_pretrained and checks that it reproduces the logits.

How to run (from the repository root)
    bash scripts/reference-env.sh          # creates .venv once, prints its python
    .venv/bin/python scripts/gen_peft_fixtures.py

Determinism
    Fixed seeds, one CPU thread, float32, eager attention and fixed JSON
    formatting. PEFT keeps target_modules as a set and writes it to
    adapter_config.json in set order, which depends on Python's string hashing,
    so the script re-executes itself with PYTHONHASHSEED=0 when that is not
    already set. Running it twice gives byte-identical files (check with
    sha256sum testdata/peft/*/* testdata/peft/*/adapter/*). The files depend on
    the versions of torch, transformers and peft (recorded in every
    reference.json); regenerate only with the ones scripts/reference-env.sh pins.
"""

import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    # See Determinism above: fixes the order PEFT writes target_modules in.
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

import json
import math
import shutil

import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join("testdata", "peft")  # relative to ROOT (the script chdirs there)

SIG = 7  # significant digits kept for logits in reference.json
ATTN = "eager"
IGNORE = -100
LR, BETAS, EPS, WEIGHT_DECAY = 1e-2, (0.9, 0.999), 1e-8, 0.01
TRAIN_SHAPE = (2, 8)
TRAIN_ID_RANGE = (3, 96)  # [low, high)
MASKED_PREFIX = 3  # the first 3 labels of row 0 are set to -100

# name -> (base model folder, LoraConfig keyword arguments, seed)
CASES = [
    (
        "llama_all",
        "testdata/models/llama",
        dict(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            bias="none",
            task_type="CAUSAL_LM",
            init_lora_weights=False,
        ),
        101,
    ),
    (
        "qwen3_qv_rslora",
        "testdata/models/qwen3",
        dict(
            r=2,
            lora_alpha=4,
            lora_dropout=0.0,
            target_modules=["q_proj", "v_proj"],
            use_rslora=True,
            rank_pattern={"v_proj": 3},
            alpha_pattern={"v_proj": 6},
            bias="none",
            task_type="CAUSAL_LM",
            init_lora_weights=False,
        ),
        202,
    ),
]


def rnd(x):
    """A float rounded to SIG significant digits, as a JSON number."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return float(f"{x:.{SIG}g}")


def rnd_list(t):
    if t.dim() == 1:
        return [rnd(v) for v in t.tolist()]
    return [rnd_list(s) for s in t]


def to_json(obj, indent=0):
    """JSON with one key per line for objects and innermost lists on one line."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}  {json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], (list, dict)):
        items = [pad + "  " + to_json(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, separators=(", ", ": "))


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(to_json(obj) + "\n")


def load_base(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=ATTN)


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float().clone()


def file_name(param_name):
    """PEFT's in-memory parameter name -> the name it saves (adapter name dropped)."""
    return param_name.replace(".default.", ".")


def lora_scalings(model):
    """Module suffix (q_proj, ...) -> the scaling PEFT set, checked equal across layers."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, LoraLayer):
            suffix = name.rsplit(".", 1)[-1]
            s = mod.scaling["default"]
            if out.setdefault(suffix, s) != s:
                raise SystemExit(f"{name}: scaling {s} differs from other {suffix} layers ({out[suffix]})")
    return out


def expected_scaling(cfg, suffix):
    r = cfg.get("rank_pattern", {}).get(suffix, cfg["r"])
    alpha = cfg.get("alpha_pattern", {}).get(suffix, cfg["lora_alpha"])
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def train_batch(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(TRAIN_ID_RANGE[0], TRAIN_ID_RANGE[1], TRAIN_SHAPE, generator=g)
    labels = ids.clone()
    labels[0, :MASKED_PREFIX] = IGNORE
    return ids, labels


def make_case(name, base_path, cfg_kw, seed):
    out_dir = os.path.join(OUT, name)
    adapter_dir = os.path.join(out_dir, "adapter")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)

    with open(os.path.join(base_path, "reference.json")) as f:
        base_ref = json.load(f)
    prompts = base_ref["prompts"][:2]

    base = load_base(base_path)
    base_logits = [logits_of(base, p) for p in prompts]
    torch.manual_seed(seed)  # the LoRA init draws from the global generator
    model = get_peft_model(base, LoraConfig(**cfg_kw))

    # Only the LoRA parameters are trainable, and lora_B is not zero.
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable or any(".lora_A." not in n and ".lora_B." not in n for n, _ in trainable):
        raise SystemExit(f"{name}: unexpected trainable parameters {[n for n, _ in trainable]}")
    for n, p in trainable:
        if ".lora_B." in n and p.abs().max().item() == 0:
            raise SystemExit(f"{name}: {n} is zero")

    scaling = lora_scalings(model)
    for suffix, s in scaling.items():
        if abs(s - expected_scaling(cfg_kw, suffix)) > 1e-12:
            raise SystemExit(f"{name}: {suffix} scaling {s} != {expected_scaling(cfg_kw, suffix)}")

    # 1. The adapter, as PEFT writes it (weights before the training step).
    model.save_pretrained(adapter_dir)
    card = os.path.join(adapter_dir, "README.md")
    if os.path.exists(card):
        os.remove(card)
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    names = {file_name(n) for n, _ in trainable}
    if set(saved) != names:
        raise SystemExit(f"{name}: saved tensors {sorted(saved)} != trainable {sorted(names)}")

    # 2. Logits with the adapter active, eval mode.
    model.eval()
    logits = [logits_of(model, p) for p in prompts]
    effect = max((a - b).abs().max().item() for a, b in zip(logits, base_logits))
    if effect < 1e-2:
        raise SystemExit(f"{name}: the adapter barely changes the logits ({effect})")

    # 3. One training step, train mode (lora_dropout is 0, so deterministic).
    ids, labels = train_batch(seed + 1)
    model.train()
    out = model(input_ids=ids, labels=labels)
    loss = out.loss
    # The convention: logits at t predict labels at t+1, mean over labels != -100.
    manual = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].reshape(-1, out.logits.shape[-1]).float(),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE,
        reduction="mean",
    )
    if abs(manual.item() - loss.item()) > 1e-6:
        raise SystemExit(f"{name}: HF loss {loss.item()} != shifted mean CE {manual.item()}")
    n_targets = int((labels[:, 1:] != IGNORE).sum())
    loss.backward()
    grads = {file_name(n): p.grad.detach().clone().contiguous() for n, p in trainable}
    opt = torch.optim.AdamW(
        [p for _, p in trainable], lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY
    )
    opt.step()
    updated = {file_name(n): p.detach().clone().contiguous() for n, p in trainable}
    # First AdamW step in closed form (bias-corrected m = g, v = g^2):
    # w' = w * (1 - lr * wd) - lr * g / (|g| + eps).
    for k, g in grads.items():
        want = saved[k] * (1 - LR * WEIGHT_DECAY) - LR * g / (g.abs() + EPS)
        if (want - updated[k]).abs().max().item() > 1e-6:
            raise SystemExit(f"{name}: {k} AdamW step differs from the closed form")
    save_file(grads, os.path.join(out_dir, "grads.safetensors"), metadata={"format": "pt"})
    save_file(updated, os.path.join(out_dir, "updated.safetensors"), metadata={"format": "pt"})

    # Reload the saved adapter onto a fresh base and check the logits, then merge.
    reloaded = PeftModel.from_pretrained(load_base(base_path), adapter_dir)
    reloaded.eval()
    reload_diff = max((logits_of(reloaded, p) - l).abs().max().item() for p, l in zip(prompts, logits))
    if reload_diff != 0:
        raise SystemExit(f"{name}: reloaded adapter logits differ by {reload_diff}")
    merged = reloaded.merge_and_unload()
    merged_diff = max((logits_of(merged, p) - l).abs().max().item() for p, l in zip(prompts, logits))
    if merged_diff > 1e-4:
        raise SystemExit(f"{name}: merged logits differ by {merged_diff}")

    ref = {
        "case": name,
        "base_model": base_path,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
        "safetensors": safetensors.__version__,
        "attn_implementation": ATTN,
        "dtype": "float32",
        "scaling": scaling,
        "scaling_note": "per target module suffix, as PEFT set it: lora_alpha/r, or lora_alpha/sqrt(r) "
        "with use_rslora; r and lora_alpha taken from rank_pattern/alpha_pattern where a key matches",
        "prompts": prompts,
        "logits": [rnd_list(l) for l in logits],
        "logits_note": "adapter active, eval mode, input_ids only (no attention mask); [prompt][T][V]",
        "adapter_max_abs_logit_change": effect,
        "merged_max_abs_diff": merged_diff,
        "merged_note": "max |logits(merge_and_unload()) - logits(adapter)| over both prompts",
        "train_input_ids": ids.tolist(),
        "train_labels": labels.tolist(),
        "train_loss": loss.item(),
        "train_loss_targets": n_targets,
        "train_note": "train mode; loss = model(input_ids, labels=labels).loss: the model shifts "
        "internally (logits[:, t] predict labels[:, t+1]) and averages cross-entropy over the "
        "shifted labels != -100 of the whole batch; grads.safetensors holds d loss / d LoRA weight; "
        "updated.safetensors holds the LoRA weights after one AdamW step from adapter/adapter_model.safetensors",
        "optimizer": {
            "name": "torch.optim.AdamW",
            "lr": LR,
            "betas": list(BETAS),
            "eps": EPS,
            "weight_decay": WEIGHT_DECAY,
        },
    }
    write_json(os.path.join(out_dir, "reference.json"), ref)
    for d, _, files in os.walk(out_dir):
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)  # safetensors writes 0600
    return ref, saved


README = """# PEFT LoRA reference fixtures

Each folder here (`llama_all`: r=4, alpha=8 on every attention and MLP projection of `testdata/models/llama`; `qwen3_qv_rslora`: r=2, alpha=4 with rank-stabilised scaling on `q_proj`/`v_proj` of `testdata/models/qwen3`, with `rank_pattern={{"v_proj": 3}}` and `alpha_pattern={{"v_proj": 6}}`) holds a LoRA adapter with non-zero random `lora_A` and `lora_B` (`init_lora_weights=False`), saved by Hugging Face PEFT's `save_pretrained` in `adapter/` (`adapter_config.json` and `adapter_model.safetensors`, exactly as PEFT wrote them, without the model card), and a `reference.json` with what PEFT computes on the CPU in float32 with eager attention: the LoRA scaling per target module, the full logits of prompts 0 and 1 of the base model's reference with the adapter active, the largest logit difference after `merge_and_unload()`, and one training step on a 2x8 batch (Hugging Face labels: the ids themselves, shifted inside the model, -100 ignored, mean over the rest) with its loss. `grads.safetensors` holds the gradient of that loss for every LoRA weight and `updated.safetensors` the LoRA weights after one `torch.optim.AdamW` step (lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight decay 0.01), both under the tensor names of `adapter_model.safetensors`. The Go tests compare Pioneer against these files. `scripts/gen_peft_fixtures.py` regenerates everything deterministically, byte for byte, with `.venv/bin/python scripts/gen_peft_fixtures.py` from the repository root (`bash scripts/reference-env.sh` sets up the venv first). It was run with peft {peft}, transformers {transformers}, torch {torch} (CPU) and safetensors {safetensors}. If you regenerate with other versions the files can change.
"""


def main():
    torch.set_num_threads(1)
    os.chdir(ROOT)
    os.makedirs(OUT, exist_ok=True)
    for name, base_path, cfg_kw, seed in CASES:
        ref, saved = make_case(name, base_path, cfg_kw, seed)
        print(f"{name}: scaling {ref['scaling']} train_loss {ref['train_loss']:.6f} "
              f"merged diff {ref['merged_max_abs_diff']:.3g} adapter effect {ref['adapter_max_abs_logit_change']:.3g}")
        for k in sorted(saved):
            print(f"  {k} {list(saved[k].shape)}")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(README.format(
            peft=peft.__version__,
            transformers=transformers.__version__,
            torch=torch.__version__.split("+")[0],
            safetensors=safetensors.__version__,
        ))


if __name__ == "__main__":
    main()
