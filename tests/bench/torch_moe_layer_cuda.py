#!/usr/bin/python3
"""PyTorch's MoE layer on the GPU, the baselines of cuda_moe_bench: the
eager loop over experts a user would write (torch_moe_layer.py's, in bf16
on CUDA) and, where this PyTorch has it, torch._grouped_mm over the tokens
sorted by expert. Same shapes and FLOP count as cuda_moe_bench; medians of
CUDA-event timings.

usage: torch_moe_layer_cuda.py [--repeat 10] [--quick]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_moe_layer import moe_layer  # noqa: E402

SHAPES = [("mixtral-8x7b", 4096, 14336, 8, 2, 4096),
          ("mixtral-8x7b", 4096, 14336, 8, 2, 16384),
          ("fine-grained", 2048, 768, 128, 8, 4096),
          ("fine-grained", 2048, 768, 128, 8, 16384)]


def grouped_layer(x, router, w1, w3, w2, k):
    """Tokens sorted by expert, each GEMM one torch._grouped_mm call."""
    probs = F.softmax(F.linear(x, router), dim=-1, dtype=torch.float)
    weights, chosen = torch.topk(probs, k, dim=-1)
    weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
    order = chosen.flatten().argsort(stable=True)
    rows = x.index_select(0, order // k)
    counts = torch.bincount(chosen.flatten(), minlength=router.shape[0])
    offsets = counts.cumsum(0).to(torch.int32)
    gate = torch._grouped_mm(rows, w1.transpose(1, 2), offs=offsets)
    up = torch._grouped_mm(rows, w3.transpose(1, 2), offs=offsets)
    down = torch._grouped_mm(F.silu(gate) * up, w2.transpose(1, 2), offs=offsets)
    out = torch.zeros_like(x)
    out.index_add_(0, order // k, down * weights.flatten()[order, None])
    return out


def median_ms(step, repeat):
    step()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    m = len(times) // 2
    return times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: PyTorch sees no CUDA device")
        return 77
    shapes = [("small", 512, 1408, 8, 2, 1024)] if args.quick else SHAPES
    g = torch.Generator(device="cuda").manual_seed(1234)
    for name, d, f, e, k, tokens in shapes:
        def weight(*shape):
            return (0.02 * torch.randn(*shape, generator=g, device="cuda")).to(torch.bfloat16)
        router, w1, w3, w2 = weight(e, d), weight(e, f, d), weight(e, f, d), weight(e, d, f)
        x = torch.randn(tokens, d, generator=g, device="cuda").to(torch.bfloat16)
        flops = tokens * (2 * d * e + k * 3 * 2 * d * f)
        paths = [("eager", lambda: moe_layer(x, router, list(w1.unbind(0)),
                                             list(w3.unbind(0)), list(w2.unbind(0)), k))]
        if hasattr(torch, "_grouped_mm"):
            paths.append(("grouped_mm", lambda: grouped_layer(x, router, w1, w3, w2, k)))
        for path, layer in paths:
            try:
                with torch.no_grad():
                    ms = median_ms(layer, args.repeat)
                print(f"torch_{path} forward {name} tokens={tokens}: {ms:.3f} ms, "
                      f"{flops / ms / 1e9:.1f} TFLOP/s")
            except Exception as exc:  # a path this PyTorch lacks for a shape
                print(f"torch_{path} forward {name} tokens={tokens}: failed ({exc})")
            # Forward and autograd's backward (input and every weight), the
            # same 3x forward FLOPs cuda_moe_bench counts.
            try:
                for tensor in (x, router, w1, w3, w2):
                    tensor.requires_grad_(True)
                dout = torch.randn_like(x)
                ms = median_ms(lambda: layer().backward(dout), args.repeat)
                print(f"torch_{path} forward_backward {name} tokens={tokens}: "
                      f"{ms:.3f} ms, {3 * flops / ms / 1e9:.1f} TFLOP/s")
            except Exception as exc:
                print(f"torch_{path} forward_backward {name} tokens={tokens}: "
                      f"failed ({exc})")
            finally:
                for tensor in (x, router, w1, w3, w2):
                    tensor.requires_grad_(False)
                    tensor.grad = None
        del router, w1, w3, w2, x
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
