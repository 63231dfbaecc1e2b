"""Checks a --profile-json summary against the ceilings it was given.

  check_profile.py PROFILE.json CEILINGS.json --steps N

Every row's bound follows from its arithmetic intensity and the ridge point
of the injected ceilings, and its percent of ceiling is its achieved rate
over that ceiling; the rows by op kind, by layer and by kernel account for
the same calls and time.
"""
import json
import math
import sys


def fail(message):
    sys.exit("check_profile: " + message)


profile = json.load(open(sys.argv[1]))
ceilings = json.load(open(sys.argv[2]))
steps = int(sys.argv[4])
if profile["steps"] != steps:
    fail(f"{profile['steps']} steps, expected {steps}")
for field in ("gemm_gflops_f32", "gemm_gflops_bf16", "bandwidth_gb_per_s"):
    if profile["ceilings"][field] != ceilings[field]:
        fail(f"ceiling {field} is {profile['ceilings'][field]}, injected "
             f"{ceilings[field]}")
totals = {}
for table in ("by_op", "by_layer", "by_kernel"):
    calls = time = 0
    for row in profile[table]:
        gemm = ceilings["gemm_gflops_" + row["dtype"]]
        bandwidth = ceilings["bandwidth_gb_per_s"]
        compute = row["intensity"] >= gemm / bandwidth
        if row["bound"] != ("compute" if compute else "memory"):
            fail(f"{table} {row['name']}: bound {row['bound']} at intensity "
                 f"{row['intensity']}")
        expected = 100 * (row["gflops"] / gemm if compute
                          else row["gb_per_s"] / bandwidth)
        if not math.isclose(row["percent_of_ceiling"], expected, rel_tol=1e-9):
            fail(f"{table} {row['name']}: {row['percent_of_ceiling']}% of "
                 f"ceiling, expected {expected}%")
        seconds = row["total_ms"] / 1e3
        if not math.isclose(row["gflops"], row["flops"] / seconds / 1e9,
                            rel_tol=1e-9):
            fail(f"{table} {row['name']}: GFLOP/s is not FLOPs over time")
        calls += row["calls"]
        time += row["total_ms"]
    totals[table] = (calls, time)
if len({c for c, _ in totals.values()}) != 1 or not all(
        math.isclose(t, totals["by_op"][1]) for _, t in totals.values()):
    fail(f"tables disagree: {totals}")
step = profile["step"]
gemm = ceilings["gemm_gflops_" + step["dtype"]]
if not math.isclose(step["percent_of_gemm_ceiling"],
                    100 * step["useful_gflops"] / gemm, rel_tol=1e-9):
    fail("the step's efficiency is not taken against the GEMM ceiling")
print(f"profile ok: {totals['by_op'][0]} calls")
