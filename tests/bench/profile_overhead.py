#!/usr/bin/python3
"""What profiling costs on the training benchmark (tests/bench/train-moe,
batch 4 x seq 256, as train_bench.py): moe-run train's median step time
with nothing asked, with --trace (one event per kernel launch) and with
--profile, the runs alternating for several rounds because this machine's
speed drifts. With --baseline-bin, a moe-run built without the profiler
runs too, for the cost of profiling when it is off. Overheads are the
median over rounds of each round's ratio to its own run without flags. Also writes the trace
and the --profile-json of the last traced round to --out, and prints its
top kernels by time with their percent of this machine's ceilings.

usage: profile_overhead.py BUILD_BIN_DIR [--steps 20] [--warmup 10]
       [--rounds 5] [--dtype f32|bf16] [--threads 2] [--baseline-bin DIR]
       [--out DIR]
"""
import argparse
import json
import os
import statistics
import tempfile

from train_setup import median_step_ms, prepare


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-bin")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    trace = os.path.join(args.out, f"train-{args.dtype}.trace.json")
    profile = os.path.join(args.out, f"train-{args.dtype}.profile.json")
    window = f"{args.warmup + 1}:"
    variants = {"off": (args.bin, []),
                "trace": (args.bin, ["--trace", trace, "--trace-steps", window]),
                "profile": (args.bin, ["--profile-json", profile])}
    if args.baseline_bin:
        variants["baseline"] = (args.baseline_bin, [])

    times = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as work:
        artifact, weights, tokens = prepare(args.bin, work, args.dtype,
                                            args.steps + args.warmup, env)
        for _ in range(args.rounds):
            for name, (bin_dir, extra) in variants.items():
                times[name].append(median_step_ms(
                    bin_dir, artifact, weights, tokens, args.steps, args.warmup,
                    work, env, extra))

    medians = {name: statistics.median(t) for name, t in times.items()}
    # Each round's variants ran back to back, so a round's ratio to its own
    # "off" run cancels most of the machine's drift between rounds.
    def overhead(name):
        if name not in times:
            return None
        ratios = [t / off for t, off in zip(times[name], times["off"])]
        return round(100 * (statistics.median(ratios) - 1), 2)
    summary = json.load(open(profile))
    top = [{"kernel": r["name"], "step_percent": round(r["step_percent"], 1),
            "percent_of_ceiling": round(r["percent_of_ceiling"], 1),
            "bound": r["bound"]} for r in summary["by_kernel"][:5]]
    print(json.dumps({
        "dtype": args.dtype, "threads": args.threads, "rounds": args.rounds,
        "step_ms_median": {k: round(v, 2) for k, v in medians.items()},
        "trace_overhead_percent": overhead("trace"),
        "profile_overhead_percent": overhead("profile"),
        "baseline_vs_off_percent": overhead("baseline"),
        "step_ms_per_round": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "step_percent_of_gemm_ceiling": round(summary["step"]["percent_of_gemm_ceiling"], 1),
        "top_kernels": top, "trace": trace, "profile": profile}))


if __name__ == "__main__":
    main()
