#!/usr/bin/python3
"""The whole-model training step on the GPU: `moe-run train --device cuda`
on a compiled training artifact (the paper's 8x152M, bf16, made by
scripts/gpu-bundle.sh) with random weights, its step time read from the
run's metrics.jsonl: the median of every step after the first (which
uploads and warms up), and the tokens per second it gives. The optimiser
runs on the host for now (docs/cuda.md), and its share is in these times.

usage: cuda_train_step.py BIN_DIR ARTIFACT BATCH_FILE [--steps 6] [--device cuda]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("artifact")
    parser.add_argument("batch_file")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="train-step-")
    try:
        result = subprocess.run(
            [os.path.join(args.bin_dir, "moe-run"), "train", args.artifact, "--device", args.device,
             "--seed", "1", "--tokens", args.batch_file, "--steps", str(args.steps),
             "--save", os.path.join(out, "run")], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"train_step: moe-run failed:\n{result.stderr[-2000:]}")
            return 1
        with open(os.path.join(out, "run", "metrics.jsonl")) as f:
            steps = [json.loads(line) for line in f if '"step_ms"' in line]
        times = [s["step_ms"] for s in steps[1:]]
        tokens = steps[-1]["tokens"] / len(steps)
        median = statistics.median(times)
        print(f"train_step {os.path.basename(args.artifact)}: {tokens:.0f} tokens/step, "
              f"{median:.1f} ms/step (median of steps 2-{len(steps)}), "
              f"{tokens / median * 1e3:.0f} tokens/s, losses "
              f"{steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}")
        return 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
