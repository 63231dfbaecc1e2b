"""What the training benchmarks share: the model (tests/bench/train-moe,
batch 4 x seq 256 of random tokens), its artifact and starting weights, and
moe-run train's median step time over the steps after a warm-up."""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, SEQ = 4, 256


def run(args, env=None):
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def compile_train(bin_dir, artifact, dtype, env, flags=()):
    """The training artifact of the benchmark's model."""
    run([os.path.join(bin_dir, "moec"), "compile", os.path.join(HERE, "train-moe"),
         "-o", artifact, "--mode", "train", "--batch", str(BATCH), "--seq", str(SEQ),
         "--dtype", dtype, *flags], env)


def prepare(bin_dir, work, dtype, steps, env):
    """Compiles the model, writes `steps` batches of tokens and the initial
    weights into `work`; returns (artifact, weights, tokens)."""
    artifact = os.path.join(work, "moe.moex")
    compile_train(bin_dir, artifact, dtype, env)
    rng = random.Random(0)
    tokens = os.path.join(work, "tokens.txt")
    with open(tokens, "w") as f:
        for _ in range(BATCH * steps):
            f.write(" ".join(str(rng.randrange(256)) for _ in range(SEQ + 1)) + "\n")
    weights = os.path.join(work, "init")
    run([os.path.join(bin_dir, "moe-run"), artifact, "--seed", "1",
         "--save-weights", weights], env)
    return artifact, weights, tokens


def median_step_ms(bin_dir, artifact, weights, tokens, steps, warmup, work, env,
                   extra=()):
    """moe-run train for warmup + steps steps; the median step_ms after the
    warm-up, from its metrics.jsonl."""
    out = os.path.join(work, "run")
    run([os.path.join(bin_dir, "moe-run"), "train", artifact, "--tokens", tokens,
         "--steps", str(steps + warmup), "--save", out, "--weights", weights]
        + list(extra), env)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if '"step_ms"' in line]
    shutil.rmtree(out)
    return statistics.median(r["step_ms"] for r in records[warmup:])
