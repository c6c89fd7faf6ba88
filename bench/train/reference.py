"""Reference side of bench/train: LoRA fine-tuning with Hugging Face transformers + PEFT.

  python reference.py SPEC.json     prints JSON: step times (s) and peak RSS (MB)

The model is built from a config with random weights (seeded), or loaded from the spec's
"weights" folder (safetensors) when it names one; LoRA rank 16 on all linear
layers; torch.optim.AdamW; batches of random token ids with labels = ids. With
"autocast": "bfloat16" in the spec the forward pass (loss included) runs under
torch.autocast(device_type, dtype=torch.bfloat16); backward and the optimizer step outside.
"""
import contextlib
import json
import resource
import sys
import time

import peft
import torch
import transformers


def main():
    spec = json.load(open(sys.argv[1]))
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    if spec.get("weights"):
        model = transformers.AutoModelForCausalLM.from_pretrained(spec["weights"], dtype=torch.float32).to(device)
        cfg = model.config
    elif spec["config"].get("architectures") == ["Qwen2ForCausalLM"]:
        cfg = transformers.Qwen2Config(**spec["config"])
        model = transformers.Qwen2ForCausalLM(cfg).to(device)
    else:
        cfg = transformers.LlamaConfig(**spec["config"])
        model = transformers.LlamaForCausalLM(cfg).to(device)
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=spec["r"], lora_alpha=spec["alpha"], lora_dropout=0.0, target_modules=spec["targets"], task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(1)
    B, T = spec["batch"], spec["seq"]
    ids = torch.randint(3, cfg.vocab_size, (B, T), generator=g).to(device)
    autocast = spec.get("autocast")
    if autocast:
        amp = lambda: torch.autocast(device.type, dtype=getattr(torch, autocast))
    else:
        amp = contextlib.nullcontext
    times = []
    for step in range(spec["warmup"] + spec["steps"]):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with amp():
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= spec["warmup"]:
            times.append(time.perf_counter() - t0)
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
           "seconds": times, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
