"""Expert parallelism: N ranks under mpirun against one process.

The data contract says that N ranks with batch b compute what one process
with batch N * b computes, so the one-process run is the reference:
- inference logits on 2 and 4 ranks (EP2, EP4, EP2 x DP2) within 1e-6
  relative, for top-2 of 4 (Mixtral), a shared expert beside 6 routed ones
  (Qwen2-MoE) and top-8 of 64 (OLMoE-shaped);
- 20 fp32 training steps on EP2, EP4 and EP2 x DP2 (and a shared expert,
  Qwen2-MoE, on EP2): losses within 1e-5 and
  final weights within 1e-4 relative (the bound covers the order of the
  reduction sums only), and a resumed EP2 x DP2 run equal to an
  uninterrupted one;
- the same bounds with the exchange pipelined in 3 non-blocking chunks
  (--exchange-chunks 3), for inference and training;
- rank-local Drop-Upcycling on 4 ranks (EP4, EP2 x DP2) bit-identical to
  `moec upcycle`;
- the bytes --profile reports exchanged per forward equal the count that
  routing implies (router logits from the PyTorch reference), and --trace
  writes one file per rank, its events under its rank;
- faults: a world size other than the compiled one, --grads-out on two
  ranks, an expert tensor missing on one rank, a rank killed with SIGKILL:
  every rank ends within 30 s with a message naming the cause, and no
  checkpoint is left.

Usage: test_parallel.py BIN_DIR WORK_DIR
"""
import json
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np

from e2e_util import run

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPI_ENV = {
    # Root in CI containers; one OpenMP thread per rank on a small machine.
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMP_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "passive",
}
GLOBAL_BATCH = 4
LAYOUTS = [  # (ranks, expert-parallel)
    (2, 2),
    (4, 4),
    (4, 2),
]


def mpirun(ranks, args, check=True, **kwargs):
    """Runs `args` on `ranks` processes; a run that hangs fails the test
    after 300 s instead of holding CI (subprocess kills mpirun, which ends
    its ranks)."""
    kwargs.setdefault("timeout", 300)
    env = dict(os.environ, **MPI_ENV)
    command = ["mpirun", "--oversubscribe", "-np", str(ranks)] + args
    if not check:
        return subprocess.run(command, env=env, capture_output=True, text=True,
                              **kwargs)
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}"
                           f"{result.stderr}")
    return result.stdout


def read_safetensors(path):
    blob = pathlib.Path(path).read_bytes()
    length = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + length])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        out[name] = np.frombuffer(blob[8 + length + begin:8 + length + end],
                                  dtype=np.float32).reshape(info["shape"])
    return out


def checkpoint(directory):
    tensors = {}
    for file in sorted(pathlib.Path(directory).glob("model*.safetensors")):
        tensors.update(read_safetensors(file))
    return tensors


def losses(directory):
    lines = (pathlib.Path(directory) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def relative(ours, ref):
    """max |ours - ref| / max |ref| (logits: the stricter measure)."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = float(np.abs(ref).max())
    return float(np.abs(ours.astype(np.float64) - ref).max()) / max(scale, 1e-30)


def relative_norm(ours, ref):
    """||ours - ref|| / ||ref||, per tensor (weights: e2e_util's measure)."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.linalg.norm(ours.astype(np.float64) - ref)
    return float(diff / max(np.linalg.norm(ref.astype(np.float64)), 1e-30))


def write_tokens(path, lines, seed, seq):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(lines):
            length = int(rng.integers(5, seq + 1))
            f.write(" ".join(str(int(t)) for t in rng.integers(0, 256, length)))
            f.write("\n")


def top8_of_64(work):
    """An OLMoE-shaped model with 64 experts, 8 per token."""
    config = json.loads((ROOT / "models/tiny-olmoe/config.json").read_text())
    config.update(num_experts=64, num_experts_per_tok=8, intermediate_size=32)
    directory = work / "top8-of-64"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def compile_model(bin_dir, model, out, batch, seq, ranks=1, ep=0, train=False):
    args = [str(bin_dir / "moec"), "compile", str(model), "-o", str(out),
            "--batch", str(batch), "--seq", str(seq)]
    if ranks > 1:
        args += ["--ranks", str(ranks), "--expert-parallel", str(ep)]
    if train:
        args += ["--mode", "train"]
    return run(args)


def check_inference(bin_dir, work, failures):
    seq = 16
    tokens = work / "prompts.txt"
    write_tokens(tokens, GLOBAL_BATCH, 1, seq)
    models = {  # name: (model, layouts)
        "tiny-mixtral": (ROOT / "models/tiny-mixtral", LAYOUTS),
        # 6 routed experts: EP4 does not divide them.
        "tiny-qwen2-moe": (ROOT / "models/tiny-qwen2-moe", [(2, 2), (4, 2)]),
        "top8-of-64": (top8_of_64(work), LAYOUTS),
    }
    for name, (model, layouts) in models.items():
        one = work / f"{name}-1.moex"
        compile_model(bin_dir, model, one, GLOBAL_BATCH, seq)
        run([str(bin_dir / "moe-run"), str(one), "--seed", "5", "--tokens",
             str(tokens), "--logits-out", str(work / f"{name}-1.safetensors")])
        reference = read_safetensors(work / f"{name}-1.safetensors")["logits"]
        for ranks, ep in layouts:
            artifact = work / f"{name}-{ranks}x{ep}.moex"
            compile_model(bin_dir, model, artifact, GLOBAL_BATCH // ranks, seq,
                          ranks, ep)
            logits = work / f"{name}-{ranks}x{ep}.safetensors"
            for chunks in (1, 3):
                mpirun(ranks, [str(bin_dir / "moe-run"), str(artifact),
                               "--seed", "5", "--tokens", str(tokens),
                               "--logits-out", str(logits),
                               "--exchange-chunks", str(chunks)])
                error = relative(read_safetensors(logits)["logits"], reference)
                verdict = "ok" if error <= 1e-6 else "FAIL"
                print(f"inference {name} {ranks} ranks EP{ep}, {chunks} "
                      f"exchange chunk(s): logits rel error {error:.2e} {verdict}")
                if error > 1e-6:
                    failures.append(f"inference {name} {ranks}x{ep}/{chunks}")


def train(bin_dir, artifact, tokens, out, ranks, extra=()):
    args = [str(bin_dir / "moe-run"), "train", str(artifact), "--seed", "3",
            "--tokens", str(tokens), "--steps", "20", "--lr", "1e-3",
            "--save", str(out)] + list(extra)
    if ranks == 1:
        return run(args)
    return mpirun(ranks, args)


def compare_runs(what, out, reference, failures):
    """20 steps' losses within 1e-5 and final weights within 1e-4 (each
    tensor's ||difference|| / ||reference||, as the other end-to-end tests
    measure weights and gradients).

    Left out of the weights: the key projection's bias (Qwen2), whose exact
    gradient is zero (it adds q . b_k to every score of a query's row, which
    the softmax cancels), so its computed gradient is rounding noise in
    either run and AdamW, which divides by the gradient's own scale, turns
    that noise into steps of up to the learning rate. Its error is printed.
    """
    got, want = losses(out), losses(reference)
    loss_error = max(abs(a - b) / abs(b) for a, b in zip(got, want))
    weights, ref_weights = checkpoint(out), checkpoint(reference)
    if sorted(weights) != sorted(ref_weights) or len(got) != len(want):
        failures.append(f"training {what}: tensors or steps differ")
        return
    noise = [k for k in weights if k.endswith("k_proj.bias")]
    weight_error = max(relative_norm(weights[k], ref_weights[k])
                       for k in weights if k not in noise)
    ok = loss_error <= 1e-5 and weight_error <= 1e-4
    note = ""
    if noise:
        note = (f" (k_proj.bias, zero exact gradient: "
                f"{max(relative_norm(weights[k], ref_weights[k]) for k in noise):.1e})")
    print(f"training {what}: {len(got)} losses rel error {loss_error:.2e}, "
          f"final weights rel error {weight_error:.2e}{note} "
          f"{'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(f"training {what}")


def check_training(bin_dir, work, failures):
    seq = 16
    tokens = work / "train.txt"
    write_tokens(tokens, 64, 2, seq)
    model = ROOT / "models/tiny-mixtral"
    one = work / "train-1.moex"
    compile_model(bin_dir, model, one, GLOBAL_BATCH, seq, train=True)
    train(bin_dir, one, tokens, work / "train-1", 1)
    for ranks, ep in LAYOUTS:
        artifact = work / f"train-{ranks}x{ep}.moex"
        compile_model(bin_dir, model, artifact, GLOBAL_BATCH // ranks, seq,
                      ranks, ep, train=True)
        out = work / f"train-{ranks}x{ep}"
        train(bin_dir, artifact, tokens, out, ranks)
        compare_runs(f"{ranks} ranks EP{ep}", out, work / "train-1", failures)

    # A shared expert beside 6 routed ones (Qwen2-MoE), EP2.
    qwen = ROOT / "models/tiny-qwen2-moe"
    compile_model(bin_dir, qwen, work / "qwen-1.moex", GLOBAL_BATCH, seq,
                  train=True)
    compile_model(bin_dir, qwen, work / "qwen-2x2.moex", GLOBAL_BATCH // 2,
                  seq, 2, 2, train=True)
    train(bin_dir, work / "qwen-1.moex", tokens, work / "qwen-1", 1)
    train(bin_dir, work / "qwen-2x2.moex", tokens, work / "qwen-2x2", 2)
    compare_runs("tiny-qwen2-moe 2 ranks EP2", work / "qwen-2x2",
                 work / "qwen-1", failures)

    # The exchange pipelined in 3 chunks (non-blocking all-to-alls): each
    # expert's rows split over 3 GEMMs, within the same bounds.
    out = work / "train-2x2-chunks"
    train(bin_dir, work / "train-2x2.moex", tokens, out, 2,
          ["--exchange-chunks", "3"])
    compare_runs("2 ranks EP2, 3 exchange chunks", out, work / "train-1",
                 failures)

    # Interrupted at step 10 and resumed on the same ranks: the same run.
    artifact = work / "train-4x2.moex"
    resumed = work / "train-resumed"
    train(bin_dir, artifact, tokens, resumed, 4, ["--stop-after", "10"])
    train(bin_dir, artifact, tokens, resumed, 4, ["--resume", str(resumed)])
    uninterrupted = checkpoint(work / "train-4x2")
    error = max(relative(w, uninterrupted[k])
                for k, w in checkpoint(resumed).items())
    same_losses = losses(resumed) == losses(work / "train-4x2")
    print(f"resume 4 ranks EP2: weights rel error {error:.2e}, losses "
          f"{'equal' if same_losses else 'DIFFER'}")
    if error > 0 or not same_losses:
        failures.append("resume 4x2")


def check_upcycling(bin_dir, work, failures):
    """Rank-local Drop-Upcycling: each rank derives its own experts, and the
    checkpoint rank 0 gathers equals `moec upcycle`'s bit for bit."""
    dense_artifact, dense = work / "dense.moex", work / "dense"
    compile_model(bin_dir, ROOT / "models/tiny-llama", dense_artifact, 1, 8)
    run([str(bin_dir / "moe-run"), str(dense_artifact), "--seed", "3",
         "--save-weights", str(dense)])
    options = ["--experts", "4", "--top-k", "2", "--ratio", "0.5", "--seed", "9"]
    reference = work / "upcycled"
    run([str(bin_dir / "moec"), "upcycle", str(dense), "-o", str(reference)] +
        options)
    imported, module = work / "dense.mlir", work / "upcycled.mlir"
    imported.write_text(run([str(bin_dir / "moec"), "import",
                             str(ROOT / "models/tiny-llama")]))
    run([str(bin_dir / "moe-opt"), str(imported), "--moe-upcycle=experts=4 "
         "top-k=2 ratio=0.5 seed=9", "-o", str(module)])
    expected = checkpoint(reference)
    for ranks, ep in [(4, 4), (4, 2)]:
        artifact = work / f"upcycled-{ranks}x{ep}.moex"
        compile_model(bin_dir, module, artifact, 1, 8, ranks, ep)
        out = work / f"upcycled-{ranks}x{ep}"
        mpirun(ranks, [str(bin_dir / "moe-run"), str(artifact), "--init-from",
                       str(dense), "--save-weights", str(out)])
        got = checkpoint(out)
        same = sorted(got) == sorted(expected) and all(
            np.array_equal(got[k], expected[k]) for k in expected)
        print(f"rank-local Drop-Upcycling {ranks} ranks EP{ep}: {len(got)} "
              f"tensors {'bit-identical to moec upcycle' if same else 'DIFFER'}")
        if not same:
            failures.append(f"upcycling {ranks}x{ep}")


def check_exchange_volume(bin_dir, work, failures):
    """--profile's exchanged bytes against the count that routing implies:
    the router logits come from the independent PyTorch reference run on
    the same weights, and a row crosses ranks when its expert's owner is not
    the rank holding its token."""
    seq, model = 16, ROOT / "models/tiny-mixtral"
    tokens = work / "full-length.txt"
    rng = np.random.default_rng(4)
    tokens.write_text("".join(
        " ".join(str(int(t)) for t in rng.integers(0, 256, seq)) + "\n"
        for _ in range(GLOBAL_BATCH)))  # no padding: every row is a token
    one, weights = work / "volume-1.moex", work / "volume-weights"
    compile_model(bin_dir, model, one, GLOBAL_BATCH, seq)
    run([str(bin_dir / "moe-run"), str(one), "--seed", "8", "--save-weights",
         str(weights)])
    routed = work / "volume-reference.safetensors"
    run(["/usr/bin/python3", str(ROOT / "tests/reference/hf_reference.py"),
         str(weights), str(tokens), str(routed), "--router-logits"])
    config = json.loads((model / "config.json").read_text())
    experts, k = config["num_local_experts"], config["num_experts_per_tok"]
    width = config["hidden_size"]
    routers = read_safetensors(routed)
    for ranks, ep in LAYOUTS:
        batch = GLOBAL_BATCH // ranks
        local = experts // ep
        expected = 0
        for name, logits in routers.items():
            if not name.startswith("router_logits."):
                continue
            chosen = np.argsort(-logits, axis=-1, kind="stable")[..., :k]
            source = (np.arange(GLOBAL_BATCH) // batch % ep)[:, None, None]
            crossing = int((chosen // local != source).sum())
            groups = ranks // ep
            expected += 2 * crossing * width * 4  # rows out and back, fp32
            expected += groups * ep * (ep - 1) * local * 8  # per-expert counts
        artifact = work / f"tiny-mixtral-{ranks}x{ep}.moex"
        trace = work / f"trace-{ranks}x{ep}.json"
        printed = mpirun(ranks, [str(bin_dir / "moe-run"), str(artifact),
                                 "--weights", str(weights), "--tokens",
                                 str(tokens), "--repeat", "2", "--profile",
                                 "--trace", str(trace)])
        # Each rank wrote its own trace, its events under its rank.
        for rank in range(ranks):
            path = work / f"trace-{ranks}x{ep}.rank{rank}.json"
            events = json.loads(path.read_text())["traceEvents"] \
                if path.exists() else []
            if not events or {e["pid"] for e in events} != {rank}:
                failures.append(f"trace of rank {rank} of {ranks}x{ep}")
        line = [l for l in printed.splitlines()
                if l.startswith("expert_exchange_bytes_per_step:")]
        got = int(line[0].split()[1]) if line else -1
        print(f"exchange volume {ranks} ranks EP{ep}: {got} bytes per forward, "
              f"routing implies {expected} {'ok' if got == expected else 'FAIL'}")
        if got != expected:
            failures.append(f"exchange volume {ranks}x{ep}")


def check_faults(bin_dir, work, failures):
    def expect(what, result, needle, seconds):
        text = result.stdout + result.stderr
        ok = result.returncode != 0 and needle in text and seconds < 30
        print(f"fault {what}: exit {result.returncode} after {seconds:.1f} s "
              f"{'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"fault {what}: {text[-2000:]}")

    tokens = work / "prompts.txt"
    two = work / "tiny-mixtral-2x2.moex"
    start = time.time()
    result = subprocess.run([str(bin_dir / "moe-run"), str(two), "--tokens",
                             str(tokens)], capture_output=True, text=True)
    expect("world size 1 for 2 ranks", result,
           "compiled for 2 ranks (moec compile --ranks 2) but this run has 1",
           time.time() - start)

    # --grads-out on two ranks: refused before any step (rank 0 reports it);
    # neither the gradients nor a checkpoint is written.
    dense = work / "tiny-llama-train-2.moex"
    compile_model(bin_dir, ROOT / "models/tiny-llama", dense, 1, 16, ranks=2,
                  ep=2, train=True)
    grads, out = work / "grads.safetensors", work / "grads-run"
    start = time.time()
    result = mpirun(2, [str(bin_dir / "moe-run"), "train", str(dense),
                        "--tokens", str(work / "train.txt"), "--steps", "1",
                        "--save", str(out), "--grads-out", str(grads)],
                    check=False, timeout=60)
    expect("--grads-out on two ranks", result,
           "moe-run train: error: --grads-out writes one process's "
           "gradients; it is not supported on several ranks yet",
           time.time() - start)
    if grads.exists() or out.exists():
        failures.append(f"fault --grads-out: left {grads} {grads.exists()}, "
                        f"{out} {out.exists()}")

    # One rank's expert tensor missing: that rank names it and ends the run.
    saved = work / "saved-weights"
    shutil.rmtree(saved, ignore_errors=True)
    mpirun(2, [str(bin_dir / "moe-run"), str(two), "--seed", "5",
               "--save-weights", str(saved)])
    blob = read_safetensors(saved / "model.safetensors")
    missing = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
    del blob[missing]
    broken = work / "broken-weights"
    broken.mkdir(exist_ok=True)
    shutil.copy(saved / "config.json", broken / "config.json")
    write_safetensors(broken / "model.safetensors", blob)
    start = time.time()
    result = mpirun(2, [str(bin_dir / "moe-run"), str(two), "--weights",
                        str(broken), "--tokens", str(tokens)], check=False,
                    timeout=60)
    expect("missing expert tensor", result,
           f"rank 1 of 2: {broken}: tensor '{missing}' is missing",
           time.time() - start)

    # A rank killed mid-training: every rank ends, no checkpoint is left.
    artifact = work / "train-2x2.moex"
    out = work / "killed"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, **MPI_ENV)
    job = subprocess.Popen(
        ["mpirun", "--oversubscribe", "-np", "2", str(bin_dir / "moe-run"),
         "train", str(artifact), "--tokens", str(work / "train.txt"),
         "--steps", "1000000", "--save", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks = []
    for _ in range(200):  # wait for both ranks
        ranks = ranks_of(job.pid)
        if len(ranks) == 2:
            break
        time.sleep(0.1)
    victim = ranks[-1] if len(ranks) == 2 else None
    time.sleep(1.0)  # into training
    if victim is None:
        job.kill()
        failures.append("fault kill: the ranks never started")
        return
    os.kill(victim, signal.SIGKILL)
    start = time.time()
    try:
        stdout, stderr = job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        stdout, stderr = job.communicate()
    result = subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)
    expect("rank killed", result, "exited on signal 9", time.time() - start)
    left = ranks
    while left and time.time() - start < 30:
        left = [p for p in ranks if running(p)]
        time.sleep(0.1)
    if left or out.exists():
        failures.append(f"fault kill: ranks left {left}, checkpoint {out.exists()}")


def running(pid):
    """Whether `pid` is a moe-run still running (not a zombie left to reap)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "(moe-run)" in stat and stat[stat.rindex(")") + 2] != "Z"


def ranks_of(parent):
    """The moe-run processes mpirun `parent` started."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        if comm == "moe-run" and ppid == parent:
            found.append(int(proc.name))
    return sorted(found)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text +
                                   b"".join(blobs))


def main():
    bin_dir, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if shutil.which("mpirun") is None:
        print("SKIP: mpirun not found (scripts/install-deps.sh installs Open MPI)")
        return 0
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    failures = []
    check_inference(bin_dir, work, failures)
    check_training(bin_dir, work, failures)
    check_upcycling(bin_dir, work, failures)
    check_exchange_volume(bin_dir, work, failures)
    check_faults(bin_dir, work, failures)
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
