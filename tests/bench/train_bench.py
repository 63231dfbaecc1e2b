#!/usr/bin/python3
"""Training throughput of moec against the PyTorch eager training loop of
the same model (tests/bench/torch_train.py), measured in the same run.

Model: tests/bench/train-moe (Mixtral family: 4 layers, hidden 256, 8
experts top-2, intermediate 512, vocab 256), batch 4 x seq 256 of random
tokens, AdamW with clipping; both sides start from the same weights (moec's
initialisation, saved and loaded by PyTorch) and read the same token file,
so their routing starts alike; both time whole optimiser steps (forward,
losses, backward, clipping, AdamW). Each side's median step time is taken
over the steps after a warm-up. The machine is shared and its speed drifts,
so the sides alternate for several rounds (moec, moec keeping the experts'
hidden states, PyTorch, moec, ...); the speedup is the ratio of the medians
of the rounds' medians, and every round's own ratio is printed too. Each
moec variant is also given as a percentage of this machine's GEMM ceiling
for the dtype (moe-run calibrate in the same run), counting 3 x the
forward FLOPs per token of `moec stats` (the backward pass's GEMMs are
twice the forward's; recomputation is not counted as useful work).

usage: train_bench.py BUILD_BIN_DIR [--steps 30] [--warmup 20] [--rounds 3]
       [--dtype f32|bf16] [--threads 2]
Run through scripts/bench.sh, which installs OpenBLAS for PyTorch.
"""
import argparse
import json
import os
import statistics
import tempfile

from train_setup import BATCH, HERE, SEQ, compile_train, median_step_ms, prepare, run


def torch_round(args, env, weights, tokens):
    torch_env = {k: v for k, v in env.items() if not k.startswith("OPENBLAS_")}
    return json.loads(run(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"),
                           "--steps", str(args.steps), "--warmup", str(args.warmup),
                           "--dtype", args.dtype, "--threads", str(args.threads),
                           "--batch", str(BATCH), "--seq", str(SEQ),
                           "--weights", weights, "--tokens", tokens],
                          torch_env).strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    ours, kept, theirs, blas = [], [], [], None
    with tempfile.TemporaryDirectory() as work:
        artifact, weights, tokens = prepare(args.bin, work, args.dtype,
                                            args.steps + args.warmup, env)
        keeping = os.path.join(work, "keep.moex")
        compile_train(args.bin, keeping, args.dtype, env, ["--keep-expert-hidden"])
        stats = run([os.path.join(args.bin, "moec"), "stats",
                     os.path.join(HERE, "train-moe"), "--seq-len", str(SEQ)], env)
        flops_per_token = float(next(line.split()[1] for line in stats.splitlines()
                                     if line.startswith("flops_per_token:")))
        ceilings = os.path.join(work, "ceilings.json")
        run([os.path.join(args.bin, "moe-run"), "calibrate", "--force",
             "--ceilings", ceilings], env)
        with open(ceilings) as f:
            gemm_gflops = json.load(f)[f"gemm_gflops_{args.dtype}"]
        for _ in range(args.rounds):
            ours.append(median_step_ms(args.bin, artifact, weights, tokens,
                                       args.steps, args.warmup, work, env))
            kept.append(median_step_ms(args.bin, keeping, weights, tokens,
                                       args.steps, args.warmup, work, env))
            result = torch_round(args, env, weights, tokens)
            theirs.append(result["step_ms_median"])
            blas = result.get("blas")

    ms, kept_ms = statistics.median(ours), statistics.median(kept)
    torch_ms = statistics.median(theirs)
    tokens_per_step = BATCH * SEQ

    def percent_of_ceiling(step_ms):
        return round(100 * 3 * flops_per_token * tokens_per_step / (step_ms * 1e6)
                     / gemm_gflops, 1)

    print(json.dumps({
        "dtype": args.dtype, "threads": args.threads, "rounds": args.rounds,
        "gemm_ceiling_gflops": round(gemm_gflops, 1),
        "moec_step_ms_median": round(ms, 2),
        "moec_tokens_per_s": round(tokens_per_step / ms * 1e3, 1),
        "moec_percent_of_gemm_ceiling": percent_of_ceiling(ms),
        "moec_keep_expert_hidden_step_ms_median": round(kept_ms, 2),
        "moec_keep_expert_hidden_percent_of_gemm_ceiling": percent_of_ceiling(kept_ms),
        "keep_expert_hidden_speedup": round(ms / kept_ms, 2),
        "pytorch_step_ms_median": round(torch_ms, 2),
        "pytorch_tokens_per_s": round(tokens_per_step / torch_ms * 1e3, 1),
        "pytorch_blas": blas,
        "speedup": round(torch_ms / ms, 2),
        "speedup_per_round": [round(t / o, 2) for o, t in zip(ours, theirs)],
        "moec_step_ms_per_round": [round(o, 2) for o in ours],
        "pytorch_step_ms_per_round": [round(t, 2) for t in theirs]}))


if __name__ == "__main__":
    main()
