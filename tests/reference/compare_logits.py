#!/usr/bin/python3
"""Compares two logits files: prints `rel_error: X`, the norm of the
difference over the norm of the reference (whole tensor, float64), and
exits 0 when X <= --tol, 1 above it (or NaN), 2 with a one-line message
when the files cannot be compared (unreadable, tensor missing, shapes
differ).

usage: compare_logits.py OURS REF [--name logits] [--tol 1e-5]
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def load(path, name):
    tensors = safetensors_io.read(path)
    if name not in tensors:
        raise ValueError(f"{path}: no tensor named {name!r} (has {', '.join(tensors) or 'none'})")
    return tensors[name].double()


def relative_error(ours, ref):
    difference = float((ours - ref).norm())
    reference = float(ref.norm())
    if reference == 0.0:
        return 0.0 if difference == 0.0 else math.inf
    return difference / reference


def main():
    parser = argparse.ArgumentParser(description="relative L2 error of OURS against REF")
    parser.add_argument("ours")
    parser.add_argument("ref")
    parser.add_argument("--name", default="logits")
    parser.add_argument("--tol", type=float, default=1e-5)
    args = parser.parse_args()
    try:
        ours = load(args.ours, args.name)
        ref = load(args.ref, args.name)
    except (OSError, ValueError) as error:
        print(f"compare_logits: error: {error}", file=sys.stderr)
        return 2
    if ours.shape != ref.shape:
        print(f"compare_logits: error: shape {list(ours.shape)} of {args.ours} != "
              f"{list(ref.shape)} of {args.ref}", file=sys.stderr)
        return 2
    error = relative_error(ours, ref)
    print(f"rel_error: {error:.6g}")
    return 0 if error <= args.tol else 1  # NaN compares false: fails


if __name__ == "__main__":
    sys.exit(main())
