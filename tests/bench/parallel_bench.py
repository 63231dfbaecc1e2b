#!/usr/bin/python3
"""Expert parallelism on one machine: training tokens/s of the training
benchmark's model (tests/bench/train-moe: 8 experts top-2, global batch
4 x seq 256, fp32) on 1 process x 2 threads against 2 processes x 1 thread
with the experts split over them (EP2, mpirun), measured in the same run.

Both read the same batches from the same starting weights. Each side's
median step time is taken over the steps after a warm-up; the sides
alternate for several rounds and the ratio is that of the medians of the
rounds' medians. The EP2 run's --profile gives the time per step inside the
experts' all-to-alls (rank 0, waiting for the other rank included) and the
bytes exchanged. With one chunk every exchange is a blocking MPI_Alltoallv;
a fourth run pipelines it in --chunks pieces (non-blocking MPI_Ialltoallv:
the next piece travels while one computes), and its time in the exchanges
(posting and waiting) against the blocking run's shows what the overlap
hides. A third run, 2 processes x 1 thread data-parallel only
(--expert-parallel 1: every rank holds every expert, no exchange), shows
what the split itself costs. Each throughput is also given as a share of this
machine's f32 GEMM ceiling on 2 threads (moe-run calibrate), counting 3 x
the forward's matmul FLOPs per token (moec stats).

usage: parallel_bench.py BUILD_BIN_DIR [--steps 20] [--warmup 10] [--rounds 3]
       [--chunks 4]
"""
import argparse
import json
import os
import statistics
import tempfile

from train_setup import BATCH, HERE, SEQ, prepare, run

RANKS = 2
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_WAIT_POLICY": "passive"}


def value(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise SystemExit(f"no '{key}' in:\n{text}")


def step_ms(out, warmup):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if '"step_ms"' in line]
    return statistics.median(r["step_ms"] for r in records[warmup:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()
    moec, moe_run = os.path.join(args.bin, "moec"), os.path.join(args.bin, "moe-run")
    two_threads = dict(os.environ, OMP_NUM_THREADS="2")
    one_thread = dict(os.environ, OMP_NUM_THREADS="1", **MPI_ENV)
    steps = args.steps + args.warmup

    with tempfile.TemporaryDirectory() as work:
        artifact, weights, tokens = prepare(args.bin, work, "f32", steps,
                                            two_threads)
        parallel = os.path.join(work, "ep2.moex")
        run([moec, "compile", os.path.join(HERE, "train-moe"), "-o", parallel,
             "--mode", "train", "--batch", str(BATCH // RANKS), "--seq", str(SEQ),
             "--ranks", str(RANKS)], two_threads)
        replicated = os.path.join(work, "dp2.moex")
        run([moec, "compile", os.path.join(HERE, "train-moe"), "-o", replicated,
             "--mode", "train", "--batch", str(BATCH // RANKS), "--seq", str(SEQ),
             "--ranks", str(RANKS), "--expert-parallel", "1"], two_threads)
        flops_per_token = value(run([moec, "stats", os.path.join(HERE, "train-moe"),
                                     "--seq-len", str(SEQ)]), "flops_per_token")
        ceilings = os.path.join(work, "ceilings.json")
        run([moe_run, "calibrate", "--force", "--ceilings", ceilings], two_threads)
        with open(ceilings) as f:
            gemm_gflops = json.load(f)["gemm_gflops_f32"]

        one, ep2, dp2, exchange_ms, exchange_bytes = [], [], [], [], 0
        chunked, chunked_exchange_ms = [], []
        for r in range(args.rounds):
            out = os.path.join(work, f"one-{r}")
            run([moe_run, "train", artifact, "--tokens", tokens, "--steps",
                 str(steps), "--save", out, "--weights", weights], two_threads)
            one.append(step_ms(out, args.warmup))
            out = os.path.join(work, f"ep2-{r}")
            printed = run(["mpirun", "--oversubscribe", "-np", str(RANKS),
                           moe_run, "train", parallel, "--tokens", tokens,
                           "--steps", str(steps), "--save", out, "--weights",
                           weights, "--profile"], one_thread)
            ep2.append(step_ms(out, args.warmup))
            exchange_ms.append(value(printed, "expert_exchange_ms_per_step"))
            exchange_bytes = value(printed, "expert_exchange_bytes_per_step")
            out = os.path.join(work, f"ep2-chunks-{r}")
            printed = run(["mpirun", "--oversubscribe", "-np", str(RANKS),
                           moe_run, "train", parallel, "--tokens", tokens,
                           "--steps", str(steps), "--save", out, "--weights",
                           weights, "--profile", "--exchange-chunks",
                           str(args.chunks)], one_thread)
            chunked.append(step_ms(out, args.warmup))
            chunked_exchange_ms.append(
                value(printed, "expert_exchange_ms_per_step"))
            out = os.path.join(work, f"dp2-{r}")
            run(["mpirun", "--oversubscribe", "-np", str(RANKS), moe_run,
                 "train", replicated, "--tokens", tokens, "--steps", str(steps),
                 "--save", out, "--weights", weights], one_thread)
            dp2.append(step_ms(out, args.warmup))

    tokens_per_step = BATCH * SEQ
    one_ms, ep2_ms = statistics.median(one), statistics.median(ep2)
    dp2_ms = statistics.median(dp2)
    gflop_per_step = 3 * flops_per_token * tokens_per_step / 1e9

    def rate(ms):
        return {"step_ms_median": round(ms, 2),
                "tokens_per_s": round(tokens_per_step / ms * 1e3, 1),
                "gflops": round(gflop_per_step / ms * 1e3, 1),
                "percent_of_f32_gemm_ceiling": round(
                    100 * gflop_per_step / ms * 1e3 / gemm_gflops, 1)}

    exchange = statistics.median(exchange_ms)
    print(json.dumps({
        "model": "train-moe (4 layers, d=256, 8 experts top-2), fp32, "
                 f"global batch {BATCH} x {SEQ}",
        "one_process_2_threads": rate(one_ms),
        "ep2_2_processes_1_thread": rate(ep2_ms),
        "dp2_2_processes_1_thread": rate(dp2_ms),
        "ep2_vs_one_process": round(one_ms / ep2_ms, 2),
        "ep2_vs_dp2": round(dp2_ms / ep2_ms, 2),
        "ep2_exchange_ms_per_step": round(exchange, 2),
        "ep2_exchange_share_of_step": round(exchange / ep2_ms, 3),
        "ep2_exchange_bytes_per_step": int(exchange_bytes),
        f"ep2_{args.chunks}_chunks_2_processes_1_thread": rate(
            statistics.median(chunked)),
        f"ep2_{args.chunks}_chunks_exchange_ms_per_step": round(
            statistics.median(chunked_exchange_ms), 2),
        "f32_gemm_ceiling_gflops_2_threads": round(gemm_gflops, 1),
        "rounds": args.rounds,
        "one_process_step_ms_per_round": [round(x, 2) for x in one],
        "ep2_step_ms_per_round": [round(x, 2) for x in ep2],
        "dp2_step_ms_per_round": [round(x, 2) for x in dp2],
        "ep2_chunks_step_ms_per_round": [round(x, 2) for x in chunked]},
        indent=1))


if __name__ == "__main__":
    main()
