#!/usr/bin/python3
"""Training throughput of moec against the PyTorch eager training loop of
the same model (tests/bench/torch_train.py), measured in the same run.

Model: tests/bench/train-moe (Mixtral family: 4 layers, hidden 256, 8
experts top-2, intermediate 512, vocab 256), batch 4 x seq 256 of random
tokens, AdamW with clipping; both sides time whole optimiser steps (forward,
losses, backward, clipping, AdamW). Reports the median step time over the
steps after warm-up and the ratio of medians. The warm-up is long because
moec compiles one oneDNN GEMM per expert row count it meets (about 0.1 ms
each), so its first few dozen steps are slower than the steady state a
training run spends its time in; both sides get the same warm-up.

usage: train_bench.py BUILD_BIN_DIR [--steps 20] [--warmup 40] [--dtype f32|bf16]
       [--threads 2]
Run through scripts/bench.sh, which installs OpenBLAS for PyTorch.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, SEQ = 4, 256


def run(args, env=None):
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    with tempfile.TemporaryDirectory() as work:
        artifact = os.path.join(work, "moe.moex")
        run([os.path.join(args.bin, "moec"), "compile", os.path.join(HERE, "train-moe"),
             "-o", artifact, "--mode", "train", "--batch", str(BATCH), "--seq", str(SEQ),
             "--dtype", args.dtype])
        rng = random.Random(0)
        tokens = os.path.join(work, "tokens.txt")
        with open(tokens, "w") as f:
            for _ in range(BATCH * (args.steps + args.warmup)):
                f.write(" ".join(str(rng.randrange(256)) for _ in range(SEQ + 1)) + "\n")
        out = os.path.join(work, "run")
        run([os.path.join(args.bin, "moe-run"), "train", artifact, "--tokens", tokens,
             "--steps", str(args.steps + args.warmup), "--save", out, "--seed", "1"], env)
        with open(os.path.join(out, "metrics.jsonl")) as f:
            steps = [json.loads(line) for line in f if '"step_ms"' in line]
        ours = statistics.median(r["step_ms"] for r in steps[args.warmup:])
        first = statistics.median(r["step_ms"] for r in steps[:5])

    torch_env = {k: v for k, v in env.items() if not k.startswith("OPENBLAS_")}
    theirs = json.loads(run(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"),
                             "--steps", str(args.steps), "--warmup", str(args.warmup),
                             "--dtype", args.dtype, "--threads", str(args.threads),
                             "--batch", str(BATCH), "--seq", str(SEQ)],
                            torch_env).strip().splitlines()[-1])
    tokens_per_step = BATCH * SEQ
    print(json.dumps({
        "dtype": args.dtype, "threads": args.threads,
        "moec_step_ms_median": round(ours, 2),
        "moec_first_steps_ms_median": round(first, 2),
        "moec_tokens_per_s": round(tokens_per_step / ours * 1e3, 1),
        "pytorch_step_ms_median": theirs["step_ms_median"],
        "pytorch_tokens_per_s": theirs["tokens_per_s_median"],
        "pytorch_blas": theirs.get("blas"),
        "speedup": round(theirs["step_ms_median"] / ours, 2)}))


if __name__ == "__main__":
    main()
