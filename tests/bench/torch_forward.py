#!/usr/bin/python3
"""Times the PyTorch reference model's forward on a checkpoint and a token
file (the baseline of scripts/bench.sh's whole-model comparison).

usage: torch_forward.py CHECKPOINT_DIR TOKENS [--repeat N] [--threads T]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import hf_reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("tokens")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.checkpoint, "config.json")) as f:
        config = json.load(f)
    weights = hf_reference.load_checkpoint(args.checkpoint)
    with open(args.tokens) as f:
        tokens = torch.tensor([[int(t) for t in line.split()] for line in f if line.strip()])
    times = []
    with torch.no_grad():
        hf_reference.forward(config, weights, tokens)
        for _ in range(args.repeat):
            start = time.perf_counter()
            hf_reference.forward(config, weights, tokens)
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    m = len(times) // 2
    median = times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2
    print(f"torch_forward_ms_median: {median:.3f}")


if __name__ == "__main__":
    main()
