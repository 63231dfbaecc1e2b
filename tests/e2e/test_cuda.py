#!/usr/bin/python3
"""Whole models on the CUDA backend against the independent PyTorch
reference: every fixture case of tests/reference/make_fixtures.py, compiled
fused (the default) and, for MoE cases, unfused (--no-fuse), in fp32 and,
for bf16 checkpoints, in bf16, run with `moe-run --device cuda`, logits
compared with the reference's. Greedy generation over the KV caches runs
with `moe-run generate --device cuda` against the reference's continuations
(test_generate.py's checks). Training runs 3 AdamW steps with `moe-run
train --device cuda` against the float64 reference's losses, gradients and
weights (test_training.py's cases and bounds), and Drop-Upcycling on load
(--init-from) must give the CPU's weights. Where transformers is
installed (the GPU
machine has it), the fp32 cases are also run through transformers' own
implementation of the architecture on the GPU: a reference nobody here
wrote.

usage: test_cuda.py prepare BIN_DIR WORK   fixtures, artifacts and a manifest
                                           (needs moec and PyTorch: run here)
       test_cuda.py check BIN_DIR WORK     runs them on the GPU (moe-run only)
       test_cuda.py BIN_DIR WORK           both; exit 77 (skip) without a GPU
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "reference")
sys.path.insert(0, REFERENCE)
import safetensors_io  # noqa: E402
import test_generate  # noqa: E402
import test_training  # noqa: E402
from e2e_util import relative_error, run  # noqa: E402

# The CPU's bounds (test_reference.py): the GPU is held to the same.
F32_TOLERANCE = 1e-5
BF16_TOLERANCE = 2e-2
# transformers' kernels (SDPA, its own RoPE and routing code) differ from
# the reference's in summation order more than cuBLAS does from oneDNN.
TRANSFORMERS_TOLERANCE = 1e-4
SKIP = 77


def cuda_device(bin_dir):
    """The first CUDA device's line of `moe-run devices`, or None and why."""
    listing = run([os.path.join(bin_dir, "moe-run"), "devices"])
    for line in listing.splitlines():
        if line.startswith("cuda:0:"):
            return line, None
    return None, " ".join(l for l in listing.splitlines() if l.startswith("cuda"))


def prepare(bin_dir, work):
    fixtures = os.path.join(work, "fixtures")
    os.makedirs(work, exist_ok=True)
    run([sys.executable, os.path.join(REFERENCE, "make_fixtures.py"), fixtures])
    manifest = []
    for case in sorted(os.listdir(fixtures)):
        case_dir = os.path.join(fixtures, case)
        with open(os.path.join(case_dir, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(case_dir, "tokens.txt")) as f:
            lines = [l.split() for l in f.read().splitlines() if l.strip()]
        checks = [("f32", "logits", F32_TOLERANCE)]
        if config.get("torch_dtype") == "bfloat16":
            checks = [("bf16", "logits", BF16_TOLERANCE),
                      ("f32", "logits_f32ref", F32_TOLERANCE)]
        moe = "num_local_experts" in config or "num_experts" in config
        for (dtype, key, tolerance), flags in (
                (check, flags) for check in checks
                for flags in [[]] + ([["--no-fuse"]] if moe else [])):
            artifact = f"{case}-{dtype}{''.join(flags).replace('--', '-')}.moex"
            run([os.path.join(bin_dir, "moec"), "compile", case_dir,
                 "-o", os.path.join(work, artifact), "--batch", str(len(lines)),
                 "--seq", str(max(len(l) for l in lines)), "--dtype", dtype, *flags])
            manifest.append({"case": case, "dtype": dtype, "artifact": artifact,
                             "flags": flags, "reference": key,
                             "tolerance": tolerance})
    generation = [prepare_generation(bin_dir, work, case, prefill)
                  for case in test_generate.CASES for prefill in (0, 4)]
    training = prepare_training(bin_dir, os.path.join(work, "training"))
    upcycling = prepare_upcycling(bin_dir, os.path.join(work, "upcycling"))
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump({"forward": manifest, "generate": generation, "training": training,
                   "upcycling": upcycling}, f, indent=1)


# Drop-Upcycling on load (moe-run --init-from): the initialisation
# programs of these moe-upcycle options run on the GPU and must give the
# weights the CPU gives (the same Philox streams; sums in another order).
UPCYCLE_OPTIONS = {"drop": "experts=4 top-k=2 ratio=0.5",
                   "noise": "experts=4 top-k=2 method=noise ratio=0.5",
                   "fine": "experts=4 top-k=2 ratio=0.5 granularity=2"}
UPCYCLE_TOLERANCE = 1e-5


def prepare_upcycling(bin_dir, work):
    """A dense checkpoint, the upcycling artifacts, and the CPU's weights."""
    os.makedirs(work, exist_ok=True)
    moec, moe_run = os.path.join(bin_dir, "moec"), os.path.join(bin_dir, "moe-run")
    dense = os.path.join(work, "dense")
    models = os.path.join(HERE, "..", "..", "models")
    run([moec, "compile", os.path.join(models, "tiny-llama"), "-o",
         os.path.join(work, "dense.moex"), "--batch", "1", "--seq", "8"])
    run([moe_run, os.path.join(work, "dense.moex"), "--seed", "3", "--save-weights", dense])
    for name, options in UPCYCLE_OPTIONS.items():
        imported = run([moec, "import", os.path.join(models, "tiny-llama")])
        upcycled = subprocess.run([os.path.join(bin_dir, "moe-opt"),
                                   f"--moe-upcycle={options}"], input=imported,
                                  capture_output=True, text=True, check=True).stdout
        with open(os.path.join(work, f"{name}.mlir"), "w") as f:
            f.write(upcycled)
        run([moec, "compile", os.path.join(work, f"{name}.mlir"), "-o",
             os.path.join(work, f"{name}.moex"), "--batch", "1", "--seq", "8"])
        run([moe_run, os.path.join(work, f"{name}.moex"), "--init-from", dense,
             "--save-weights", os.path.join(work, f"{name}-cpu")])
    return list(UPCYCLE_OPTIONS)


def check_upcycling(bin_dir, work, name, report):
    """The GPU's upcycled weights against the CPU's, tensor by tensor."""
    what = f"upcycle {name} [--init-from on cuda vs cpu]"
    try:
        ours = os.path.join(work, f"{name}-cuda")
        run([os.path.join(bin_dir, "moe-run"), os.path.join(work, f"{name}.moex"),
             "--device", "cuda", "--init-from", os.path.join(work, "dense"),
             "--save-weights", ours])
        a = safetensors_io.read(os.path.join(ours, "model.safetensors"))
        b = safetensors_io.read(os.path.join(work, f"{name}-cpu", "model.safetensors"))
        if sorted(a) != sorted(b):
            report(False, what, "different tensors")
            return
        worst = max((relative_error(a[key].double(), b[key].double()), key) for key in b)
        report(worst[0] <= UPCYCLE_TOLERANCE, what,
               f"worst tensor {worst[1]} rel_error {worst[0]:.2e} "
               f"(tolerance {UPCYCLE_TOLERANCE:g})")
    except Exception as exc:
        report(False, what, str(exc))


def prepare_training(bin_dir, work):
    """test_training.py's cases that cover the CUDA training kernels: fused
    and unfused Mixtral, padding with the z-loss (recomputed and kept hidden
    states), bf16, a shared expert, top-4 of 16, clip_qkv, tied embeddings
    with accumulated micro-batches."""
    t = test_training
    os.makedirs(work, exist_ok=True)
    return [t.prepare(bin_dir, work, "train-mixtral", t.MIXTRAL),
            t.prepare(bin_dir, work, "train-mixtral", t.MIXTRAL, compile_flags=["--no-fuse"]),
            t.prepare(bin_dir, work, "train-mixtral", t.MIXTRAL, lengths=[9, 5], z_coef=0.01),
            t.prepare(bin_dir, work, "train-mixtral", t.MIXTRAL, lengths=[9, 5], z_coef=0.01,
                      compile_flags=["--keep-expert-hidden"]),
            t.prepare(bin_dir, work, "train-mixtral", t.MIXTRAL, "bf16"),
            t.prepare(bin_dir, work, "train-qwen2moe", t.QWEN2_MOE),
            t.prepare(bin_dir, work, "train-qwen3moe", t.QWEN3_MOE),
            t.prepare(bin_dir, work, "train-olmoe", t.OLMOE, lengths=[9, 5]),
            t.prepare(bin_dir, work, "train-llama-tied", t.LLAMA, accumulate=2)]


def prepare_generation(bin_dir, work, case, prefill):
    """A generation artifact, its ragged prompts and the reference's greedy
    continuations (test_generate.py's setup)."""
    case_dir = os.path.join(work, "fixtures", case)
    with open(os.path.join(case_dir, "config.json")) as f:
        dtype = "bf16" if json.load(f).get("torch_dtype") == "bfloat16" else "f32"
    tag = f"{case}-{dtype}-prefill{prefill or 'all'}"
    prompts = test_generate.ragged_prompts(case_dir)
    batch = len(prompts) + 1
    capacity = max(len(p) for p in prompts) + test_generate.SPARE
    with open(os.path.join(work, f"{tag}.prompts.txt"), "w") as f:
        f.write("".join(" ".join(p) + "\n" for p in prompts))
    run([os.path.join(bin_dir, "moec"), "compile", case_dir, "-o",
         os.path.join(work, f"{tag}.moex"), "--mode", "generate", "--batch", str(batch),
         "--seq", str(capacity), "--dtype", dtype]
        + (["--prefill", str(prefill)] if prefill else []))
    run([sys.executable, os.path.join(REFERENCE, "generate_reference.py"), case_dir,
         os.path.join(work, f"{tag}.prompts.txt"), str(test_generate.MAX_NEW),
         os.path.join(work, f"{tag}.reference.json"), "--capacity", str(capacity)]
        + (["--dtype", "bf16"] if dtype == "bf16" else []))
    return {"case": case, "dtype": dtype, "tag": tag, "prompts": len(prompts)}


def check_generation(bin_dir, work, entry, report):
    """Greedy generation on the GPU against the reference, per prompt."""
    tag, case_dir = entry["tag"], os.path.join(work, "fixtures", entry["case"])
    out = os.path.join(work, f"{tag}.cuda.out.txt")
    logits = os.path.join(work, f"{tag}.cuda.logits.safetensors")
    try:
        run([os.path.join(bin_dir, "moe-run"), "generate", os.path.join(work, f"{tag}.moex"),
             "--device", "cuda", "--weights", case_dir,
             "--prompts", os.path.join(work, f"{tag}.prompts.txt"),
             "--max-new-tokens", str(test_generate.MAX_NEW), "--out", out,
             "--logits-out", logits])
        with open(out) as f:
            ours = [[int(t) for t in line.split()] for line in f.read().splitlines()]
        ours_logits = safetensors_io.read(logits)["logits"]
        with open(os.path.join(work, f"{tag}.reference.json")) as f:
            ref = json.load(f)
    except Exception as exc:
        report(False, f"{tag} [generate on cuda]", str(exc))
        return
    if len(ours) != entry["prompts"]:
        report(False, f"{tag} [generate on cuda]",
               f"{len(ours)} continuations for {entry['prompts']} prompts")
    for b, ids in enumerate(ours):
        message, ok = test_generate.compare(
            ids, ours_logits[b, :len(ids)].tolist(),
            (ref["continuations"][b], ref["logits"][b]), entry["dtype"])
        report(ok, f"{tag} prompt {b} [generate on cuda vs reference]", message)


def transformers_logits(case_dir, lines):
    """transformers' logits of each sequence on the GPU, or None."""
    try:
        import torch
        import transformers
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    model = transformers.AutoModelForCausalLM.from_pretrained(
        case_dir, torch_dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        return [model(torch.tensor([[int(t) for t in line]]).cuda()).logits[0].cpu()
                for line in lines]


def check(bin_dir, work):
    device, why = cuda_device(bin_dir)
    if device is None:
        print(f"FAIL: no CUDA device ({why})")
        return 1
    print(f"on {device}")
    with open(os.path.join(work, "manifest.json")) as f:
        manifest = json.load(f)
    passed = failed = 0

    def report(ok, what, message):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'}: {what} {message}", flush=True)
        passed += ok
        failed += not ok

    for entry in manifest["generate"]:
        check_generation(bin_dir, work, entry, report)
    for name in manifest["upcycling"]:
        check_upcycling(bin_dir, os.path.join(work, "upcycling"), name, report)
    for prepared in manifest["training"]:
        what = f"{prepared['name']} [3 training steps on cuda vs reference]"
        try:
            ok = test_training.train_and_compare(bin_dir, os.path.join(work, "training"),
                                                 prepared, "cuda")[0]
            report(ok, what, "")
        except Exception as exc:
            report(False, what, str(exc))
    for entry in manifest["forward"]:
        case_dir = os.path.join(work, "fixtures", entry["case"])
        tokens = os.path.join(case_dir, "tokens.txt")
        logits = os.path.join(work, entry["artifact"].replace(".moex", ".cuda.safetensors"))
        what = (f"{entry['case']}{' '.join([''] + entry['flags'])} "
                f"[{entry['dtype']} on cuda vs {entry['reference']}]")
        try:
            run([os.path.join(bin_dir, "moe-run"), os.path.join(work, entry["artifact"]),
                 "--device", "cuda", "--weights", case_dir, "--tokens", tokens,
                 "--logits-out", logits])
            ours = safetensors_io.read(logits)["logits"]
            ref = safetensors_io.read(os.path.join(case_dir, "logits.safetensors"))
            error = relative_error(ours, ref[entry["reference"]])
            report(error <= entry["tolerance"], what,
                   f"rel_error {error:.3e} (tolerance {entry['tolerance']:g})")
        except Exception as exc:  # report and go on with the other cases
            report(False, what, str(exc))
            continue
        if entry["reference"] != "logits" or entry["dtype"] != "f32" or entry["flags"]:
            continue
        with open(tokens) as f:
            lines = [l.split() for l in f.read().splitlines() if l.strip()]
        what = f"{entry['case']} [f32 on cuda vs transformers on cuda]"
        try:
            theirs = transformers_logits(case_dir, lines)
        except Exception as exc:
            report(False, what, f"transformers failed: {exc}")
            continue
        if theirs is None:
            print(f"SKIP: {what}: transformers is not installed")
            continue
        worst = max(relative_error(ours[b, :len(line)], theirs[b])
                    for b, line in enumerate(lines))
        report(worst <= TRANSFORMERS_TOLERANCE, what,
               f"worst sequence rel_error {worst:.3e} "
               f"(tolerance {TRANSFORMERS_TOLERANCE:g})")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] in ("prepare", "check"):
        command, bin_dir, work = sys.argv[1:]
        if command == "prepare":
            prepare(bin_dir, work)
            return 0
        return check(bin_dir, work)
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bin_dir, work = sys.argv[1:]
    device, why = cuda_device(bin_dir)
    if device is None:
        print(f"SKIP: no CUDA device ({why})")
        return SKIP
    prepare(bin_dir, work)
    return check(bin_dir, work)


if __name__ == "__main__":
    sys.exit(main())
