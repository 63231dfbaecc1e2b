#!/usr/bin/python3
"""Compares two logits files: prints `rel_error: X` (norm of the difference
over the norm of the reference, in float64) and exits 1 above --tol, 2 when
the files cannot be compared.

usage: compare_logits.py OURS REF [--name logits] [--tol 1e-5]
"""
import argparse
import sys

import safetensors_io


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ours")
    parser.add_argument("ref")
    parser.add_argument("--name", default="logits")
    parser.add_argument("--tol", type=float, default=1e-5)
    args = parser.parse_args()
    try:
        ours = safetensors_io.read(args.ours)[args.name].double()
        ref = safetensors_io.read(args.ref)[args.name].double()
    except (OSError, KeyError, ValueError) as error:
        print(f"compare_logits: error: {error}", file=sys.stderr)
        return 2
    if ours.shape != ref.shape:
        print(f"compare_logits: error: shape {tuple(ours.shape)} != {tuple(ref.shape)}",
              file=sys.stderr)
        return 2
    error = float((ours - ref).norm() / ref.norm())
    print(f"rel_error: {error:.3e}")
    return 0 if error <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
