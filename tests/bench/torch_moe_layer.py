#!/usr/bin/python3
"""The PyTorch eager MoE layer a user would write (loop over experts with
index_select / index_add_, one weight tensor per expert matrix as
transformers' Mixtral holds them), timed the same way as moe_layer_bench.

With --backward, times the forward and autograd's backward of the layer
(gradients of the input and every weight) instead.

usage: torch_moe_layer.py [--tokens 4096] [--d 512] [--ffn 1408]
       [--experts 8] [--top-k 2] [--repeat 20] [--dtype f32|bf16] [--threads 2]
       [--backward]
"""
import argparse
import time

import torch
import torch.nn.functional as F


def moe_layer(x, router, w1, w3, w2, k):
    probs = F.softmax(F.linear(x, router), dim=-1, dtype=torch.float)
    weights, chosen = torch.topk(probs, k, dim=-1)
    weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
    out = torch.zeros_like(x)
    for e in range(router.shape[0]):
        rows, slots = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        h = x.index_select(0, rows)
        h = F.linear(F.silu(F.linear(h, w1[e])) * F.linear(h, w3[e]), w2[e])
        out.index_add_(0, rows, h * weights[rows, slots, None])
    return out


def main():
    parser = argparse.ArgumentParser()
    for name, default in [("tokens", 4096), ("d", 512), ("ffn", 1408), ("experts", 8),
                          ("top-k", 2), ("repeat", 20), ("threads", 2)]:
        parser.add_argument("--" + name, type=int, default=default)
    parser.add_argument("--dtype", default="f32")
    parser.add_argument("--backward", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    g = torch.Generator().manual_seed(1234)
    e, d, f = args.experts, args.d, args.ffn
    router = (0.02 * torch.randn(e, d, generator=g)).to(dtype)
    w1 = list((0.02 * torch.randn(e, f, d, generator=g)).to(dtype).unbind(0))
    w3 = list((0.02 * torch.randn(e, f, d, generator=g)).to(dtype).unbind(0))
    w2 = list((0.02 * torch.randn(e, d, f, generator=g)).to(dtype).unbind(0))
    x = torch.randn(args.tokens, d, generator=g).to(dtype)
    dout = torch.randn(args.tokens, d, generator=g).to(dtype)
    if args.backward:
        for tensor in [router, x] + w1 + w3 + w2:
            tensor.requires_grad_(True)

    def step():
        if args.backward:
            moe_layer(x, router, w1, w3, w2, args.top_k).backward(dout)
        else:
            with torch.no_grad():
                moe_layer(x, router, w1, w3, w2, args.top_k)

    times = []
    step()  # warm-up
    for _ in range(args.repeat):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    m = len(times) // 2
    median = times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2
    flops = args.tokens * (2 * d * e + args.top_k * 3 * 2 * d * f)
    print(f"torch_moe_layer_ms_median: {median:.3f}")
    print(f"torch_moe_layer_gflops: {flops / median / 1e6:.1f}")


if __name__ == "__main__":
    main()
