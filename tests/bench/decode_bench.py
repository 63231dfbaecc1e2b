#!/usr/bin/python3
"""Decode speed of moe-run generate on the paper's 8x152M shape (random
weights) against the physical bound and the PyTorch eager decode loop
(tests/bench/torch_decode.py), all measured in the same run.

- The bound: the weight bytes one decode step must read over the read
  bandwidth measured now (`moe-run calibrate --force`: a read-only sum over
  twice the last-level cache). A decode step reads weights and writes
  almost nothing, so the triad (whose reads and writes together move more
  bytes per second here than reads alone can) is printed but not used. The
  bytes are every parameter but the embedding table (whose B rows are
  read), plus the experts the step's tokens chose: top-k per MoE layer at
  batch 1 (k distinct experts, exact), and at larger batches the mean
  number of distinct experts per layer that the PyTorch run's routing chose
  (the same router shapes and weight scale; moe-run does not report its
  own).
- The speed: each side's median step time (one token per sequence), after
  a prompt of 16 tokens, over 63 decode steps. The machine is shared and
  drifts, so the sides alternate for several rounds and the medians of the
  rounds are compared.

usage: decode_bench.py BUILD_BIN_DIR [--rounds 3] [--threads 2]
Prints one row per dtype and batch.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
MODEL = os.path.join(ROOT, "models", "drop-upcycling-8x152m")
PROMPT, NEW = 16, 64


def run(args, env=None):
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def value(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise SystemExit(f"no '{key}:' in:\n{text}")


def step_bytes(config, dtype, batch, experts_per_layer):
    """Weight bytes a decode step reads."""
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim") or d // heads
    layers, e = config["num_hidden_layers"], config["num_local_experts"]
    attention = d * hd * (2 * heads + 2 * kv) + 2 * d
    dense = layers * (attention + e * d) + d + v * d + batch * d  # + lm_head, B rows
    expert = 3 * d * f
    size = 2 if dtype == "bf16" else 4
    return size * (dense + layers * experts_per_layer * expert)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    torch_env = {k: v for k, v in env.items() if not k.startswith("OPENBLAS_")}
    with open(os.path.join(MODEL, "config.json")) as f:
        config = json.load(f)
    with tempfile.TemporaryDirectory() as work:
        ceilings = run([os.path.join(args.bin, "moe-run"), "calibrate", "--force",
                        "--ceilings", os.path.join(work, "ceilings.json")], env)
        read, triad = value(ceilings, "read_gb_per_s"), value(ceilings, "bandwidth_gb_per_s")
        bandwidth = read
        print(f"bandwidth: read {read:.1f} GB/s (the bound's), triad {triad:.1f} GB/s")
        rng = random.Random(0)
        for dtype in ("bf16", "f32"):
            for batch in (1, 8):
                artifact = os.path.join(work, f"{dtype}-{batch}.moex")
                run([os.path.join(args.bin, "moec"), "compile", MODEL, "-o", artifact,
                     "--mode", "generate", "--batch", str(batch), "--seq", str(PROMPT + NEW),
                     "--prefill", str(PROMPT), "--dtype", dtype])
                prompts = os.path.join(work, f"prompts-{batch}.txt")
                with open(prompts, "w") as f:
                    for _ in range(batch):
                        f.write(" ".join(str(rng.randrange(config["vocab_size"]))
                                         for _ in range(PROMPT)) + "\n")
                ours, theirs, experts = [], [], []
                for _ in range(args.rounds):
                    out = run([os.path.join(args.bin, "moe-run"), "generate", artifact,
                               "--seed", "1", "--prompts", prompts, "--max-new-tokens",
                               str(NEW)], env)
                    ours.append(value(out, "decode_ms_per_token"))
                    out = run(["/usr/bin/python3", os.path.join(HERE, "torch_decode.py"),
                               os.path.join(MODEL, "config.json"), "--dtype", dtype,
                               "--batch", str(batch), "--prompt", str(PROMPT),
                               "--new-tokens", str(NEW), "--threads", str(args.threads)],
                              torch_env)
                    theirs.append(value(out, "torch_decode_ms_per_step"))
                    experts.append(value(out, "distinct_experts_per_layer"))
                chosen = config["num_experts_per_tok"] if batch == 1 else statistics.mean(experts)
                mb = step_bytes(config, dtype, batch, chosen) / 1e6
                bound = mb / 1e3 / bandwidth * 1e3  # ms
                ms, torch_ms = statistics.median(ours), statistics.median(theirs)
                print(f"decode {dtype} batch {batch}: moec {ms:.2f} ms/step "
                      f"({batch * 1000 / ms:.1f} tokens/s), bound {bound:.2f} ms "
                      f"({mb:.0f} MB, {chosen:.2f} experts/layer) -> {100 * bound / ms:.0f}% "
                      f"of the bound; pytorch eager {torch_ms:.2f} ms -> "
                      f"{torch_ms / ms:.2f}x; rounds moec {ours}, pytorch {theirs}")


if __name__ == "__main__":
    main()
