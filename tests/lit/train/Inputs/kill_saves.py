"""Kills a training run with SIGKILL at random moments, many times, and
checks after each kill that every checkpoint under OUT is complete; then
resumes to the end and prints the final step. The caller compares the
final weights with an uninterrupted run.

usage: kill_saves.py OUT KILLS SEED COMMAND...

COMMAND trains with --save OUT (and --save-every 1, so that saves are
frequent and kills often land inside one); after the first checkpoint
exists, "--resume OUT" is appended to it.

A checkpoint directory is complete when its config.json and
trainer_state.json parse and every .safetensors file holds all the data its
header describes (tests/reference/safetensors_io.py reads it). Directories being written or removed (NAME.tmp-PID,
NAME.old-PID) may be left by a kill; nothing else may.
"""
import json
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "reference"))
import safetensors_io  # noqa: E402


def fail(message):
    sys.exit("kill_saves: " + message)


def check_checkpoint(path):
    names = os.listdir(path)
    for required in ("config.json", "trainer_state.json", "optimizer.safetensors"):
        if required not in names:
            fail(f"{path} looks like a checkpoint but has no {required}")
    for name in ("config.json", "trainer_state.json"):
        json.load(open(os.path.join(path, name)))
    if not any(n.endswith(".safetensors") and n != "optimizer.safetensors"
               for n in names):
        fail(f"{path} has no weights")
    for name in names:
        if name.endswith(".safetensors"):
            try:  # a file cut short has data its header does not cover
                safetensors_io.read(os.path.join(path, name))
            except ValueError as error:
                fail(str(error))


def staged(out, pid):
    """Whether the save of process `pid` was cut short: a directory it was
    writing or removing is left."""
    parent, base = os.path.split(os.path.abspath(out))
    names = [n for n in os.listdir(parent) if n.startswith(base + ".")]
    if os.path.isdir(out):
        names += os.listdir(out)
    return any(re.fullmatch(rf".*\.(tmp|old)-{pid}", n) for n in names)


def check_run(out):
    """Every checkpoint under OUT (OUT itself when it holds one) is complete."""
    if not os.path.isdir(out):
        return 0
    staging = re.compile(r".*\.(tmp|old)-\d+$")
    checkpoints = 0
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if re.fullmatch(r"checkpoint-\d+", name):
            check_checkpoint(path)
            checkpoints += 1
        elif os.path.isdir(path) and not staging.fullmatch(name):
            fail(f"unexpected directory {path}")
    if "trainer_state.json" in os.listdir(out):
        check_checkpoint(out)
        checkpoints += 1
    return checkpoints


def main():
    out, kills, seed, command = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                 sys.argv[4:])
    rng = random.Random(seed)
    landed = inside = 0
    for _ in range(kills):
        resume = ["--resume", out] if check_run(out) else []
        process = subprocess.Popen(command + resume, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        # Once the run saves checkpoints (its start-up time varies with the
        # machine's load), kill it a random moment later: saves take most
        # of a step here, so most kills land inside one.
        before = set(os.listdir(out)) if os.path.isdir(out) else set()
        deadline = time.time() + 30
        while time.time() < deadline and process.poll() is None and not (
                os.path.isdir(out) and any(
                    re.fullmatch(r"checkpoint-\d+", n)
                    for n in set(os.listdir(out)) - before)):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))
        if process.poll() is not None:
            break  # finished before the kill
        process.kill()
        process.wait()
        landed += 1
        check_run(out)
        if staged(out, process.pid):
            inside += 1
    # Finish the run.
    resume = ["--resume", out] if check_run(out) else []
    result = subprocess.run(command + resume, capture_output=True, text=True)
    if result.returncode != 0 and "already reached step" not in result.stderr:
        fail(f"the last run failed: {result.stderr}")
    check_run(out)
    state = json.load(open(os.path.join(out, "trainer_state.json")))
    print(f"killed {landed} times, {inside} inside a save; "
          f"final step {state['step']}")


main()
