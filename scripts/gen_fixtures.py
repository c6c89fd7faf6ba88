"""gen_fixtures.py: writes the tiny reference models under testdata/models/.

What it makes
    testdata/models/<name>/ for each of: llama, llama3_rope, qwen2, qwen3, mistral,
    gpt2, llama_sharded. Each folder is a Hugging Face checkpoint as written by
    save_pretrained (config.json, generation_config.json, model.safetensors, or
    model-0000i-of-0000n.safetensors + model.safetensors.index.json for
    llama_sharded) of a tiny float32 model with random weights (hidden size 32,
    2 layers, vocabulary 96, 64 positions), plus reference.json: what Hugging Face
    transformers computes for it on the CPU (full logits of three prompts, greedy
    continuations alone and batched with left padding, and the log-probabilities
    of prompt 0). The Go tests load the checkpoint and compare against it. No
    model hub and no tokenizer is involved: prompts are token ids.

    Besides the usual random init, every norm weight and every bias in the model
    is set to random values (norm weights around 1, biases around 0), so an
    implementation that forgets a norm weight or a bias does not pass by luck.
    llama3_rope and qwen2 have config.json rewritten with the Hub's rope keys
    (rope_theta, rope_scaling) instead of transformers 5's rope_parameters, so
    that loaders are tested on both layouts (see write_legacy_rope_config).

How to run (from the repository root)
    bash scripts/reference-env.sh          # creates .venv once, prints its python
    .venv/bin/python scripts/gen_fixtures.py

Determinism
    Fixed seeds, one CPU thread, fixed JSON formatting: running it twice gives
    byte-identical files (check with sha256sum testdata/models/*/*). The files
    depend on the versions of torch and transformers (recorded in every
    reference.json); regenerate only with the ones scripts/reference-env.sh pins.
"""

import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    Qwen3Config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "models")

VOCAB = 96
PAD, BOS, EOS = 0, 1, 2
PROMPT_LENGTHS = (5, 9, 12)
PROMPT_SEED = 1234
NEW_TOKENS = 8
ATTN = "eager"  # every reference below is computed with eager attention
SIG = 7  # significant digits kept for floats in reference.json

COMMON = dict(
    vocab_size=VOCAB,
    max_position_embeddings=64,
    initializer_range=0.2,
    bos_token_id=BOS,
    eos_token_id=EOS,
    pad_token_id=PAD,
)

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # 32 rather than 16: with head_dim 24 and theta 500000 this puts frequency 0
    # in the unchanged band (wavelength 2*pi < 32/4), frequency 1 in the smoothed
    # band and frequencies 2..11 in the divided-by-factor band, so all three
    # branches of the llama3 formula are exercised.
    "original_max_position_embeddings": 32,
}


def llama_config():
    return LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        **COMMON,
    )


def llama3_rope_config():
    return LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=24,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling=dict(LLAMA3_ROPE),
        tie_word_embeddings=True,
        **COMMON,
    )


def qwen2_config():
    return Qwen2Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        use_sliding_window=False,
        **COMMON,
    )


def qwen3_config():
    return Qwen3Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=False,
        use_sliding_window=False,
        **COMMON,
    )


def mistral_config(sliding_window=6):
    return MistralConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        sliding_window=sliding_window,
        tie_word_embeddings=False,
        **COMMON,
    )


def gpt2_config():
    return GPT2Config(
        vocab_size=VOCAB,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        initializer_range=0.2,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        tie_word_embeddings=True,
    )


# Models whose config.json is rewritten with the Hub's rope_theta/rope_scaling keys.
LEGACY_ROPE_CONFIG = {"llama3_rope", "qwen2"}

# name -> (config factory, weight seed, save_pretrained max_shard_size or None).
# Seeds are picked so that every greedy continuation has at least 4 distinct tokens
# and never has eos as its argmax (min_new_tokens would mask it, and generate would
# then differ from a plain argmax).
MODELS = [
    ("llama", llama_config, 11, None),
    ("llama3_rope", llama3_rope_config, 12, None),
    ("qwen2", qwen2_config, 113, None),
    ("qwen3", qwen3_config, 84, None),
    ("mistral", mistral_config, 15, None),
    ("gpt2", gpt2_config, 76, None),
    ("llama_sharded", llama_config, 11, "40KB"),  # same weights as llama
]


def rnd(x):
    """A float rounded to SIG significant digits, as a JSON number."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return float(f"{x:.{SIG}g}")


def rnd_list(t):
    if t.dim() == 0:
        return rnd(t.item())
    return [rnd_list(s) for s in t] if t.dim() > 1 else [rnd(v) for v in t.tolist()]


def build(config_fn, seed, **cfg_kw):
    config = config_fn(**cfg_kw)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=ATTN, dtype=torch.float32)
    # Norm weights start at 1 and biases at 0: make them random so they matter.
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            leaf = name.rsplit(".", 1)[-1]
            is_norm = "norm" in name or ".ln_" in name
            if leaf == "bias":
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif is_norm and leaf == "weight":
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def make_prompts():
    g = torch.Generator().manual_seed(PROMPT_SEED)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in PROMPT_LENGTHS]


@torch.no_grad()
def logits_of(model, ids):
    mask = torch.ones(1, len(ids), dtype=torch.long)
    return model(torch.tensor([ids]), attention_mask=mask).logits[0].float()


@torch.no_grad()
def generate(model, input_ids, attention_mask):
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        do_sample=False,
        max_new_tokens=NEW_TOKENS,
        min_new_tokens=NEW_TOKENS,
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    return out[:, input_ids.shape[1]:].tolist()


@torch.no_grad()
def argmax_loop(model, ids):
    """Greedy decoding by recomputing the whole sequence each step (no cache)."""
    ids = list(ids)
    new = []
    for _ in range(NEW_TOKENS):
        nxt = int(logits_of(model, ids)[-1].argmax())
        new.append(nxt)
        ids.append(nxt)
    return new


def rope_inv_freq(model):
    rot = getattr(getattr(model, "model", None), "rotary_emb", None)
    return None if rot is None else rot.inv_freq.detach().float().clone()


def unscaled_inv_freq(config):
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    theta = config.rope_parameters["rope_theta"]
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))


def reference(name, model, prompts, extra):
    config = model.config
    logits = [logits_of(model, p) for p in prompts]

    greedy = [generate(model, torch.tensor([p]), torch.ones(1, len(p), dtype=torch.long))[0] for p in prompts]
    for p, gr in zip(prompts, greedy):
        loop = argmax_loop(model, p)
        if loop != gr:
            raise SystemExit(f"{name}: generate {gr} != argmax loop {loop}; change the seed")
    if any(len(set(gr)) < 4 for gr in greedy):
        raise SystemExit(f"{name}: degenerate greedy continuations {greedy}")

    width = max(len(p) for p in prompts)
    batch_ids = [[PAD] * (width - len(p)) + p for p in prompts]
    batch_mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
    batch_greedy = generate(model, torch.tensor(batch_ids), torch.tensor(batch_mask))
    rows_equal = [a == b for a, b in zip(batch_greedy, greedy)]

    lp = torch.log_softmax(logits[0].double(), dim=-1)
    logprobs = [lp[t, prompts[0][t + 1]].item() for t in range(len(prompts[0]) - 1)]

    # How far SDPA is from the eager reference (a tolerance hint for the Go side).
    model.config._attn_implementation = "sdpa"
    sdpa_diff = max((logits_of(model, p) - l).abs().max().item() for p, l in zip(prompts, logits))
    model.config._attn_implementation = ATTN

    ref = {
        "model": name,
        "architecture": config.architectures[0] if config.architectures else type(model).__name__,
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
        "attn_implementation": ATTN,
        "dtype": "float32",
        "vocab_size": VOCAB,
        "pad_token_id": PAD,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "prompts": prompts,
        "logits": [rnd_list(l) for l in logits],
        "max_new_tokens": NEW_TOKENS,
        "greedy": greedy,
        "greedy_note": "generate(do_sample=False, max_new_tokens=8, min_new_tokens=8): new tokens only; "
        "checked equal to a plain argmax loop recomputing the full sequence without a cache",
        "batch_input_ids": batch_ids,
        "batch_attention_mask": batch_mask,
        "batch_greedy": batch_greedy,
        "batch_greedy_equals_greedy": rows_equal,
        "batch_note": "left padding with pad id 0 and attention_mask 0 on pads; generate derives "
        "position_ids = cumsum(attention_mask)-1 with pads set to 0, so real tokens sit at "
        "positions 0..len-1 and decode steps continue from len",
        "logprobs": [rnd(v) for v in logprobs],
        "logprobs_note": "log_softmax(logits of prompts[0])[t][prompts[0][t+1]] for t = 0..T-2",
        "sdpa_max_abs_logit_diff": rnd(sdpa_diff),
    }
    inv = rope_inv_freq(model)
    if inv is not None:
        ref["rope_inv_freq"] = rnd_list(inv)
    ref.update(extra)
    return ref


def to_json(obj, indent=0):
    """JSON with one key per line and each innermost list (of numbers) on one line."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {to_json(v, indent + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (list, dict)) for v in obj):
        return pad + "[\n" + ",\n".join(to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj, separators=(", ", ": "))


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(to_json(obj) + "\n")


def write_legacy_rope_config(d):
    """Rewrites config.json with the rope keys the Hub checkpoints use.

    transformers 5 writes "rope_parameters": {"rope_theta": ..., "rope_type": ..., ...};
    the checkpoints on the Hub (Llama 3.x, Qwen2.5, ...) have "rope_theta" at the top
    level and "rope_scaling" (null or {"rope_type": ..., ...}). A loader has to read both,
    so these fixtures keep the older layout; transformers 5 reads it back to the same
    rope_parameters (checked by the reload below).
    """
    path = os.path.join(d, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rope = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = rope.pop("rope_theta")
    cfg["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    with open(path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def extras(name, model, prompts):
    extra = {}
    if name == "llama3_rope":
        scaled = rope_inv_freq(model)
        plain = unscaled_inv_freq(model.config)
        changed = (scaled - plain).abs() > 1e-12 * plain
        if not changed.any():
            raise SystemExit("llama3_rope: rope scaling changes no frequency")
        extra["rope_inv_freq_unscaled"] = rnd_list(plain)
        extra["rope_inv_freq_changed"] = changed.tolist()
    if name == "mistral":
        # Same weights with no sliding window: the 12-token prompt must see a difference.
        seed = next(m[2] for m in MODELS if m[0] == name)
        full = build(mistral_config, seed, sliding_window=None)
        full.load_state_dict(model.state_dict())
        diffs = [(logits_of(model, p) - logits_of(full, p)).abs().max().item() for p in prompts]
        # The 5-token prompt fits in the window; the 9- and 12-token ones do not.
        if diffs[0] != 0.0 or diffs[1] == 0.0 or diffs[2] == 0.0:
            raise SystemExit(f"mistral: unexpected sliding-window effect {diffs}")
        extra["sliding_window"] = model.config.sliding_window
        extra["max_abs_logit_diff_vs_no_sliding_window"] = [rnd(d) for d in diffs]
        extra["sliding_window_note"] = (
            "HF masking_utils: query at position q attends to key k iff k <= q and k > q - sliding_window, "
            "i.e. the last sliding_window keys including itself"
        )
    return extra


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    prompts = make_prompts()
    for name, config_fn, seed, shard in MODELS:
        d = os.path.join(OUT, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        model = build(config_fn, seed)
        kw = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, **kw)
        ref = reference(name, model, prompts, extras(name, model, prompts))
        if name in LEGACY_ROPE_CONFIG:
            write_legacy_rope_config(d)
            ref["config_format"] = "legacy rope keys: top-level rope_theta and rope_scaling (as on the Hub)"
        else:
            ref["config_format"] = "transformers 5: rope_parameters {rope_theta, rope_type, ...}"

        # The saved folder must load back to the same logits.
        back = AutoModelForCausalLM.from_pretrained(d, attn_implementation=ATTN, dtype=torch.float32).eval()
        if getattr(model.config, "rope_parameters", None) != getattr(back.config, "rope_parameters", None):
            raise SystemExit(f"{name}: rope parameters changed on reload")
        for p, l in zip(prompts, ref["logits"]):
            diff = (logits_of(back, p) - torch.tensor(l)).abs().max().item()
            if diff > 1e-5:
                raise SystemExit(f"{name}: reloaded model differs from reference by {diff}")
        write_json(os.path.join(d, "reference.json"), ref)
        files = sorted(os.listdir(d))
        print(f"{name}: {', '.join(files)}; greedy {ref['greedy']}; "
              f"batch==greedy {ref['batch_greedy_equals_greedy']}", file=sys.stderr)


if __name__ == "__main__":
    main()
