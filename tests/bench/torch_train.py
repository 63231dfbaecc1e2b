#!/usr/bin/python3
"""PyTorch eager baseline of moec's training benchmark: the training step a
competent practitioner writes for a tiny Mixtral-style MoE (nn.Modules, the
experts looped over with index_select / index_add_ as transformers' Mixtral
does), timed over several steps after warm-up.

Model (defaults): 4 layers, hidden 256, 4 heads (4 KV, head_dim 64), RoPE
theta 1e6, RMSNorm eps 1e-5, 8 experts top-2 with intermediate 512 (SwiGLU
w2(silu(w1 x) * w3 x)), vocab 256, untied lm_head; init Normal(0, 0.02),
norms 1. Batch 4 x seq 256 of uniformly random tokens (a new batch each
step), next-token prediction on every position.
Step: zero_grad; loss = mean CE + aux_coef * load-balancing loss
(transformers' load_balancing_loss_func over all layers' router logits,
default coef 0.02); backward; clip_grad_norm_(1.0); per-step lr (linear
warm-up, cosine to min_lr); torch.optim.AdamW(betas (0.9, 0.95), eps 1e-8,
weight decay 0.1 on ndim >= 2 parameters only) -- the optimiser of
tests/reference/train_reference.py. --dtype bf16 runs forward and loss
under torch.autocast("cpu", bfloat16) with fp32 master weights.

usage: torch_train.py [--batch 4] [--seq 256] [--layers 4] [--hidden 256]
       [--heads 4] [--kv-heads 4] [--experts 8] [--top-k 2] [--ffn 512]
       [--vocab 256] [--steps 10] [--warmup 2] [--dtype f32|bf16]
       [--threads N (default: all cores)] [--weights HF_DIR] [--tokens FILE]
--weights starts from a checkpoint (train_bench.py passes moec's initial
weights, so both sides start from the same model); --tokens takes the
batches from a file of seq + 1 ids a line instead of drawing them.
Run it as scripts/bench.sh runs its PyTorch baselines: with OpenBLAS
installed (libopenblas0-openmp) and without this machine's OPENBLAS_*
overrides: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 ...
Prints one JSON line: tokens_per_s_median (batch * seq / median step time),
step_ms_median, threads, and the configuration ("blas" names the BLAS
library loaded: with Debian's reference BLAS the numbers mean little).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import safetensors_io  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        y = x.float()
        return self.weight * (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, d, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.hd ** -0.5 + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        return self.o_proj(torch.matmul(probs, v).transpose(1, 2).reshape(b, s, -1))


class Expert(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.w1 = nn.Linear(d, ffn, bias=False)
        self.w2 = nn.Linear(ffn, d, bias=False)
        self.w3 = nn.Linear(d, ffn, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoe(nn.Module):
    """MixtralSparseMoeBlock: softmax, top-k, renormalise, loop over experts."""

    def __init__(self, d, ffn, experts, top_k):
        super().__init__()
        self.top_k = top_k
        self.gate = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList(Expert(d, ffn) for _ in range(experts))

    def forward(self, x):
        b, s, d = x.shape
        x = x.reshape(-1, d)
        logits = self.gate(x)
        weights, chosen = torch.topk(F.softmax(logits, dim=-1, dtype=torch.float), self.top_k, dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            rows, slots = torch.where(chosen == e)
            if rows.numel():
                h = expert(x.index_select(0, rows)) * weights[rows, slots, None]
                out.index_add_(0, rows, h.to(x.dtype))
        return out.view(b, s, d), logits


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.input_layernorm = RMSNorm(a.hidden)
        self.self_attn = Attention(a.hidden, a.heads, a.kv_heads)
        self.post_attention_layernorm = RMSNorm(a.hidden)
        self.block_sparse_moe = SparseMoe(a.hidden, a.ffn, a.experts, a.top_k)

    def forward(self, h, cos, sin, mask):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask)
        out, logits = self.block_sparse_moe(self.post_attention_layernorm(h))
        return h + out, logits


class MoeLM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.experts, self.top_k = a.experts, a.top_k
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden)
        self.lm_head = nn.Linear(a.hidden, a.vocab, bias=False)
        for p in self.parameters():
            if p.ndim >= 2:
                nn.init.normal_(p, std=0.02)
        hd = a.hidden // a.heads
        inv_freq = 1.0 / (1e6 ** (torch.arange(0, hd, 2).float() / hd))
        emb = torch.outer(torch.arange(a.seq).float(), inv_freq).repeat(1, 2)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1), persistent=False)

    def forward(self, tokens, labels, aux_coef):
        s = tokens.shape[1]
        cos, sin, mask = self.cos[:s], self.sin[:s], self.mask[:s, :s]
        h, routers = self.embed_tokens(tokens), []
        for layer in self.layers:
            h, logits = layer(h, cos, sin, mask)
            routers.append(logits)
        logits = self.lm_head(self.norm(h)).float()
        ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.reshape(-1))
        probs = F.softmax(torch.cat(routers).float(), dim=-1)  # load_balancing_loss_func
        _, chosen = torch.topk(probs, self.top_k, dim=-1)
        tokens_per_expert = F.one_hot(chosen, self.experts).float().mean(0)
        aux = self.experts * (tokens_per_expert * probs.mean(0).unsqueeze(0)).sum()
        return ce + aux_coef * aux


def load_checkpoint(model, directory):
    """Loads a Hugging Face Mixtral checkpoint (model.safetensors, as moec
    writes it) into the model's fp32 parameters: HF names are this model's
    with a `model.` prefix, except lm_head."""
    tensors = safetensors_io.read(os.path.join(directory, "model.safetensors"))
    state = {name[len("model."):] if name.startswith("model.") else name: tensor.float()
             for name, tensor in tensors.items()}
    model.load_state_dict(state, strict=True)


def read_batches(path, steps, batch, seq):
    """[steps, batch, seq + 1] token ids from a file of one sequence a line,
    taken in file order and cycled."""
    with open(path) as f:
        lines = [[int(t) for t in line.split()] for line in f if line.strip()]
    if any(len(line) != seq + 1 for line in lines):
        raise ValueError(f"{path}: every line must hold seq + 1 = {seq + 1} token ids")
    rows = [lines[i % len(lines)] for i in range(steps * batch)]
    return torch.tensor(rows).view(steps, batch, seq + 1)


def blas_library():
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure BLAS is loaded
    with open("/proc/self/maps") as f:
        maps = f.read()
    for name in ("openblas", "mkl_rt", "blis", "libblas"):
        if name in maps:
            return name
    return "unknown"


def main():
    parser = argparse.ArgumentParser()
    for name, default in [("batch", 4), ("seq", 256), ("layers", 4), ("hidden", 256), ("heads", 4),
                          ("kv-heads", 4), ("experts", 8), ("top-k", 2), ("ffn", 512), ("vocab", 256),
                          ("steps", 10), ("warmup", 2), ("threads", len(os.sched_getaffinity(0)))]:
        parser.add_argument("--" + name, type=int, default=default)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr", type=float, default=1e-4)
    parser.add_argument("--aux-coef", type=float, default=0.02)
    parser.add_argument("--weights", help="start from this HF checkpoint directory")
    parser.add_argument("--tokens", help="batches from this file (one sequence of seq + 1 ids a line)")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = MoeLM(a)
    if a.weights:
        load_checkpoint(model, a.weights)
    params = list(model.parameters())
    optimiser = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    total = a.warmup + a.steps
    data = (read_batches(a.tokens, total, a.batch, a.seq) if a.tokens
            else torch.randint(0, a.vocab, (total, a.batch, a.seq + 1)))
    times, losses = [], []
    for step in range(total):
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(data[step, :, :-1], data[step, :, 1:], a.aux_coef)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        progress = step / max(1, total)  # cosine, W = 0 (the warm-up steps only warm the timing)
        for group in optimiser.param_groups:
            group["lr"] = a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * progress))
        optimiser.step()
        losses.append(float(loss))
        if step >= a.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    m = len(times) // 2
    median = times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2
    print(json.dumps({"tokens_per_s_median": round(a.batch * a.seq / median * 1e3, 1),
                      "step_ms_median": round(median, 3), "threads": a.threads, "dtype": a.dtype,
                      "batch": a.batch, "seq": a.seq, "steps": a.steps, "blas": blas_library(),
                      "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4)}))


if __name__ == "__main__":
    main()
