"""PyTorch eager reference for bench/engine: the same measurements as the Go side.

Reads a JSON spec on argv[1], prints a JSON object of raw timings on stdout.
The model mirrors model/llama (RMSNorm, RoPE computed per forward in float32, GQA
attention through scaled_dot_product_attention, SwiGLU MLP, tied embeddings).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        C, F_, Hq, Hkv, D = c["hidden"], c["intermediate"], c["heads"], c["kv_heads"], c["hidden"] // c["heads"]
        self.Hq, self.Hkv, self.D, self.eps = Hq, Hkv, D, c["eps"]
        self.input_layernorm = torch.nn.Parameter(torch.ones(C))
        self.post_attention_layernorm = torch.nn.Parameter(torch.ones(C))
        self.q_proj = torch.nn.Linear(C, Hq * D, bias=False)
        self.k_proj = torch.nn.Linear(C, Hkv * D, bias=False)
        self.v_proj = torch.nn.Linear(C, Hkv * D, bias=False)
        self.o_proj = torch.nn.Linear(Hq * D, C, bias=False)
        self.gate_proj = torch.nn.Linear(C, F_, bias=False)
        self.up_proj = torch.nn.Linear(C, F_, bias=False)
        self.down_proj = torch.nn.Linear(F_, C, bias=False)

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = F.rms_norm(x, (x.shape[-1],), self.input_layernorm, self.eps)
        q = self.q_proj(h).view(B, T, self.Hq, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.Hq != self.Hkv)
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, self.Hq * self.D))
        h = F.rms_norm(x, (x.shape[-1],), self.post_attention_layernorm, self.eps)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class TinyLlama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = torch.nn.Embedding(c["vocab"], c["hidden"])
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = torch.nn.Parameter(torch.ones(c["hidden"]))

    def rope(self, T, device):
        D = self.c["hidden"] // self.c["heads"]
        inv = 1.0 / (self.c["theta"] ** (torch.arange(0, D, 2, device=device).float() / D))
        freqs = torch.arange(T, device=device).float()[:, None] * inv[None, :]
        emb = torch.cat((freqs, freqs), -1)[None, None]
        return emb.cos(), emb.sin()

    def forward(self, ids, targets):
        cos, sin = self.rope(ids.shape[1], ids.device)
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        logits = F.linear(F.rms_norm(x, (x.shape[-1],), self.norm, self.c["eps"]), self.embed.weight)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def op_overhead(spec, device):
    a = torch.ones(1, device=device)
    b = torch.ones(1, device=device)
    n, out = spec["op_iters"], []
    for rep in range(spec["warmup_reps"] + spec["reps"]):
        sync(device)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            torch.add(a, b)
        sync(device)
        if rep >= spec["warmup_reps"]:
            out.append((time.perf_counter_ns() - t0) / n)
    return out


def train_steps(spec, device, fused):
    c = spec["model"]
    torch.manual_seed(0)
    model = TinyLlama(c).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
    g = torch.Generator().manual_seed(1)
    B, T = spec["batch"], spec["seq"]
    ids = torch.randint(0, c["vocab"], (B, T), generator=g).to(device)
    tg = torch.randint(0, c["vocab"], (B, T), generator=g).to(device)
    out = []
    for rep in range(spec["warmup_reps"] + spec["reps"]):
        sync(device)
        t0 = time.perf_counter_ns()
        for _ in range(spec["train_iters"]):
            loss = model(ids, tg)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss.item()
        sync(device)
        if rep >= spec["warmup_reps"]:
            out.append((time.perf_counter_ns() - t0) / spec["train_iters"] / 1e6)
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    res = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "op_call_overhead_ns": op_overhead(spec, device),
        "train_step_ms": train_steps(spec, device, fused=None),
        "train_step_fused_ms": train_steps(spec, device, fused=True),
    }
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
