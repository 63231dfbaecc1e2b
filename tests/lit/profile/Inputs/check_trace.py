"""Checks a moe-run --trace file against the artifact's schedule.

  check_trace.py TRACE.json KERNELS.txt STATS.txt --steps N --tokens T
                 [--program forward|training]

KERNELS.txt is `moe-run MODEL.moex --list-kernels`, STATS.txt `moec stats`.
Asserts: valid Chrome trace JSON; each traced step has exactly one event
per kernel of the program, named and located as --list-kernels says;
every kernel lies inside its step (and, when training, inside a phase);
the product FLOPs of a step's forward kernels equal flops_per_token x T.
"""
import argparse
import json
import re
import sys


def fail(message):
    sys.exit("check_trace: " + message)


def schedule(path, program):
    """[(kernel, location)] of the forward program or the training step."""
    sections, current = {"forward": []}, "forward"
    for line in open(path):
        if line.startswith("training step:"):
            current = "training"
            sections[current] = []
        match = re.match(r"#\d+ (\S+) <- (.*) : ", line)
        if match:
            sections[current].append((match.group(1), match.group(2)))
    return sections[program]


def expected_name(location):
    op = location.split(" ")[0].removeprefix("moe.")
    where = re.search(r" at (\S+)", location)
    return f"{where.group(1)}/{op}" if where else op


def inside(inner, outer):
    return (outer["ts"] <= inner["ts"] + 1e-3 and
            inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"] + 1e-3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("kernels")
    parser.add_argument("stats")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--program", default="forward")
    args = parser.parse_args()

    events = json.load(open(args.trace))["traceEvents"]
    complete = [e for e in events if e.get("ph") == "X"]
    for e in complete:
        if not (isinstance(e["ts"], (int, float)) and e["dur"] >= 0):
            fail(f"bad timing in {e}")
    kernels = schedule(args.kernels, args.program)
    steps = sorted({e["args"]["step"] for e in complete if e["cat"] == "kernel"})
    if len(steps) != args.steps:
        fail(f"kernels of steps {steps}, expected {args.steps} steps")
    stats = dict(line.split(": ", 1) for line in open(args.stats) if ": " in line)
    flops_per_token = int(stats["flops_per_token"])

    for step in steps:
        launches = [e for e in complete
                    if e["cat"] == "kernel" and e["args"]["step"] == step]
        if len(launches) != len(kernels):
            fail(f"step {step}: {len(launches)} kernel events, "
                 f"{len(kernels)} kernels")
        for e in launches:
            kernel, location = kernels[e["args"]["index"]]
            if (e["args"]["kernel"], e["args"]["location"]) != (kernel, location):
                fail(f"event {e['name']} does not match --list-kernels: "
                     f"{kernel} <- {location}")
            if e["name"] != expected_name(location):
                fail(f"event {e['name']}, expected {expected_name(location)}")
        if sorted(e["args"]["index"] for e in launches) != list(range(len(kernels))):
            fail(f"step {step}: kernel indices are not one per kernel")
        enclosing = [e for e in complete if e["cat"] == "step" and
                     all(inside(k, e) for k in launches)]
        if len(enclosing) != 1:
            fail(f"step {step}: {len(enclosing)} step events enclose its kernels")
        if args.program == "training":
            phases = [e for e in complete if e["cat"] == "phase" and
                      inside(e, enclosing[0])]
            names = {e["name"] for e in phases}
            for name in ("data loading", "forward", "backward",
                         "gradient clipping", "optimizer"):
                if name not in names:
                    fail(f"step {step}: no '{name}' phase inside the step")
            for k in launches:
                if not any(inside(k, p) for p in phases
                           if p["name"] in ("forward", "backward")):
                    fail(f"{k['name']} is in neither forward nor backward")
        products = sum(e["args"]["flops"] for e in launches
                       if e["args"]["products"] and "_grad" not in e["args"]["op"])
        if products != flops_per_token * args.tokens:
            fail(f"step {step}: forward product FLOPs {products:.0f}, "
                 f"moec stats says {flops_per_token} x {args.tokens}")
    print(f"trace ok: {len(steps)} steps x {len(kernels)} kernels")


main()
