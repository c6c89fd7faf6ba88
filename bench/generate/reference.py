"""Reference side of bench/generate: Hugging Face transformers `generate`.

  python reference.py make DIR NAME            build a random-weight model from a known config
  python reference.py run SPEC.json            time greedy generation, print JSON

Models are built from configuration alone (no download) with seeded random weights and
saved in Hugging Face format, so the Go side loads exactly the same weights.
"""
import json
import sys
import time

import torch
import transformers

CONFIGS = {
    # A small random Qwen2-architecture model.
    "tiny-random-qwen2": dict(
        architectures=["Qwen2ForCausalLM"], vocab_size=1024, hidden_size=64, intermediate_size=176,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
    ),
    # Qwen2.5-0.5B's published shape (its config.json), random weights.
    "qwen2.5-0.5b-shape": dict(
        architectures=["Qwen2ForCausalLM"], vocab_size=151936, hidden_size=896, intermediate_size=4864,
        num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
    ),
}


def make(path, name):
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(**CONFIGS[name], bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = transformers.Qwen2ForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(spec_path):
    spec = json.load(open(spec_path))
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[spec["dtype"]]
    model = transformers.AutoModelForCausalLM.from_pretrained(spec["model"], dtype=dtype).to(device).eval()
    # Never stop early: both sides generate exactly new_tokens tokens, with no logit processors.
    model.generation_config.eos_token_id = None
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(), "runs": []}
    for prompts in spec["batches"]:
        ids = torch.tensor(prompts, device=device)
        mask = torch.ones_like(ids)
        times, tokens = [], None
        for rep in range(spec["warmup"] + spec["reps"]):
            sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                     max_new_tokens=spec["new_tokens"], pad_token_id=0)
            sync(device)
            if rep >= spec["warmup"]:
                times.append(time.perf_counter() - t0)
            tokens = gen[:, ids.shape[1]:].tolist()
        out["runs"].append({"seconds": times, "tokens": tokens})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        run(sys.argv[2])
