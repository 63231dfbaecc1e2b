#!/usr/bin/python3
"""The PyTorch eager decode loop a user writes for a Mixtral (or Llama)
config: a preallocated KV cache per layer, one token per sequence per step,
eager attention over the cached rows (Debian's torch has no
scaled_dot_product_attention), and transformers' Mixtral expert loop (index the tokens of each chosen expert). Random weights
in the given dtype; greedy. Timed per decode step (median), the baseline of
scripts/bench.sh's decode rows.

usage: torch_decode.py CONFIG.json [--dtype f32|bf16] [--batch 1]
       [--prompt 16] [--new-tokens 64] [--threads 2]
Prints torch_decode_ms_per_step (median), torch_decode_tokens_per_s and
distinct_experts_per_layer (mean over decode steps and MoE layers: the
experts whose weights a step reads).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    dtype = x.dtype
    x = x.float()
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Model:
    def __init__(self, c, dtype, batch, capacity):
        g = torch.Generator().manual_seed(1)

        def rand(*shape, std=0.02):
            return (std * torch.randn(*shape, generator=g)).to(dtype)

        self.c, self.dtype = c, dtype
        d, hd = c["hidden_size"], c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        self.heads, self.kv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        self.experts = c.get("num_local_experts", 0)
        self.top_k = c.get("num_experts_per_tok", 0)
        f = c["intermediate_size"]
        self.embed = rand(c["vocab_size"], d)
        self.head = rand(c["vocab_size"], d)
        self.norm = torch.ones(d, dtype=dtype)
        self.layers = []
        for _ in range(c["num_hidden_layers"]):
            layer = {"in_norm": torch.ones(d, dtype=dtype), "post_norm": torch.ones(d, dtype=dtype),
                     "q": rand(self.heads * hd, d), "k": rand(self.kv * hd, d),
                     "v": rand(self.kv * hd, d), "o": rand(d, self.heads * hd),
                     "k_cache": torch.zeros(batch, self.kv, capacity, hd, dtype=dtype),
                     "v_cache": torch.zeros(batch, self.kv, capacity, hd, dtype=dtype)}
            if self.experts:
                layer["router"] = rand(self.experts, d, std=0.5)
                layer["w1"] = [rand(f, d) for _ in range(self.experts)]
                layer["w3"] = [rand(f, d) for _ in range(self.experts)]
                layer["w2"] = [rand(d, f) for _ in range(self.experts)]
            else:
                layer.update(gate=rand(f, d), up=rand(f, d), down=rand(d, f))
            self.layers.append(layer)
        theta = c.get("rope_theta", 10000.0)
        inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.outer(torch.arange(capacity).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos().to(dtype), emb.sin().to(dtype)
        self.chosen = []  # distinct experts per MoE layer of the last call

    def moe(self, x, layer):
        logits = F.linear(x, layer["router"])
        probs = F.softmax(logits, dim=-1, dtype=torch.float)
        weights, chosen = torch.topk(probs, self.top_k, dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        self.chosen.append(len(torch.unique(chosen)))
        out = torch.zeros_like(x)
        for e in torch.unique(chosen).tolist():
            rows, slots = torch.where(chosen == e)
            h = x[rows]
            h = F.linear(F.silu(F.linear(h, layer["w1"][e])) * F.linear(h, layer["w3"][e]),
                         layer["w2"][e])
            out.index_add_(0, rows, h * weights[rows, slots, None])
        return out

    def forward(self, ids, start):
        """ids [batch, rows] at positions start.. (the same for every
        sequence); returns the last row's logits."""
        c, batch, rows = self.c, ids.shape[0], ids.shape[1]
        eps = c.get("rms_norm_eps", 1e-5)
        self.chosen = []
        cos = self.cos[start:start + rows][None, None]
        sin = self.sin[start:start + rows][None, None]
        h = F.embedding(ids, self.embed)
        for layer in self.layers:
            n = rms_norm(h, layer["in_norm"], eps)
            q = F.linear(n, layer["q"]).view(batch, rows, self.heads, self.hd).transpose(1, 2)
            k = F.linear(n, layer["k"]).view(batch, rows, self.kv, self.hd).transpose(1, 2)
            v = F.linear(n, layer["v"]).view(batch, rows, self.kv, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            layer["k_cache"][:, :, start:start + rows] = k
            layer["v_cache"][:, :, start:start + rows] = v
            keys = layer["k_cache"][:, :, :start + rows].repeat_interleave(self.heads // self.kv, 1)
            values = layer["v_cache"][:, :, :start + rows].repeat_interleave(self.heads // self.kv, 1)
            scores = torch.matmul(q, keys.transpose(2, 3)) * self.hd ** -0.5
            if rows > 1:  # the prompt: causal within it
                mask = torch.full((rows, start + rows), float("-inf")).triu(start + 1)
                scores = scores + mask.to(scores.dtype)
            probs = F.softmax(scores, dim=-1, dtype=torch.float).to(q.dtype)
            a = torch.matmul(probs, values)
            h = h + F.linear(a.transpose(1, 2).reshape(batch, rows, -1), layer["o"])
            n = rms_norm(h, layer["post_norm"], eps)
            if self.experts:
                h = h + self.moe(n.reshape(batch * rows, -1), layer).view(batch, rows, -1)
            else:
                h = h + F.linear(F.silu(F.linear(n, layer["gate"])) * F.linear(n, layer["up"]),
                                 layer["down"])
        h = rms_norm(h[:, -1], self.norm, eps)
        return F.linear(h, self.head).float()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    for name, default in [("batch", 1), ("prompt", 16), ("new-tokens", 64), ("threads", 2)]:
        parser.add_argument("--" + name, type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        config = json.load(f)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = Model(config, dtype, args.batch, args.prompt + args.new_tokens)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, config["vocab_size"], (args.batch, args.prompt), generator=g)
    steps, experts = [], []
    with torch.no_grad():
        token = model.forward(ids, 0).argmax(-1)
        for position in range(args.prompt, args.prompt + args.new_tokens - 1):
            start = time.perf_counter()
            token = model.forward(token[:, None], position).argmax(-1)
            steps.append(1000 * (time.perf_counter() - start))
            experts.extend(model.chosen)
    median = statistics.median(steps)
    print(f"torch_decode_ms_per_step: {median:.3f}")
    print(f"torch_decode_tokens_per_s: {args.batch * 1000 / median:.2f}")
    if experts:
        print(f"distinct_experts_per_layer: {statistics.mean(experts):.3f}")


if __name__ == "__main__":
    main()
