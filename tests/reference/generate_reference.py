#!/usr/bin/python3
"""Greedy generation by the independent PyTorch reference (hf_reference.py),
without a cache: each new token is the argmax of a full forward pass over
the prompt and everything generated so far. Written from the semantics of
transformers' greedy search (argmax of the last position's logits, which
picks the lower id on ties), not from moec.

usage: generate_reference.py CHECKPOINT_DIR PROMPTS_FILE MAX_NEW OUT.json
                             [--dtype {f32,bf16}] [--capacity S]
OUT.json: {"continuations": [[ids...] per prompt],
           "logits": [[[vocab floats] per step] per prompt]}: the fp32 logits
each token was chosen from. With --capacity, prompt and continuation
together stop at S tokens, as moe-run generate stops at its context.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference  # noqa: E402


def greedy(config, weights, prompt, max_new, capacity, dtype=None):
    """The continuation of `prompt` and the logits of each step."""
    tokens, steps = list(prompt), []
    while len(steps) < max_new and len(tokens) < capacity:
        logits, _ = hf_reference.forward(config, weights, torch.tensor([tokens]), dtype)
        last = logits[0, -1]
        steps.append(last)
        tokens.append(int(torch.argmax(last)))
    return tokens[len(prompt):], steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("prompts")
    parser.add_argument("max_new", type=int)
    parser.add_argument("out")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default=None)
    parser.add_argument("--capacity", type=int, default=1 << 30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = hf_reference.Config(hf_reference.load_config(args.checkpoint))
    weights = hf_reference.load_checkpoint(args.checkpoint)
    dtype = hf_reference.DTYPES[args.dtype] if args.dtype else None
    result = {"continuations": [], "logits": []}
    for prompt in hf_reference.read_tokens(args.prompts):
        ids, steps = greedy(config, weights, prompt, args.max_new, args.capacity, dtype)
        result["continuations"].append(ids)
        result["logits"].append([step.tolist() for step in steps])
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
