#!/usr/bin/python3
"""End-to-end check of moec + moe-run against the independent PyTorch
reference in tests/reference: for every fixture case, compile the config,
run the checkpoint on its tokens, and compare the logits. MoE configs run
with their blocks fused (the default) and unfused (--no-fuse).

usage: test_reference.py BUILD_BIN_DIR WORK_DIR
Fixtures are generated into WORK_DIR/fixtures by tests/reference/make_fixtures.py.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "reference")
sys.path.insert(0, REFERENCE)
import safetensors_io  # noqa: E402
from e2e_util import relative_error, run  # noqa: E402

# Relative error bounds (norm of difference over norm of reference).
F32_TOLERANCE = 1e-5
BF16_TOLERANCE = 2e-2




def check_case(bin_dir, case_dir, out_dir, dtype, reference, tolerance, flags=()):
    with open(os.path.join(case_dir, "tokens.txt")) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    batch, seq = len(lines), max(len(l) for l in lines)
    artifact = os.path.join(out_dir, f"{os.path.basename(case_dir)}-{dtype}"
                            + "".join(flags).replace("--", "-") + ".moex")
    logits = artifact.replace(".moex", ".logits.safetensors")
    run([os.path.join(bin_dir, "moec"), "compile", case_dir, "-o", artifact,
         "--batch", str(batch), "--seq", str(seq), "--dtype", dtype, *flags])
    run([os.path.join(bin_dir, "moe-run"), artifact, "--weights", case_dir,
         "--tokens", os.path.join(case_dir, "tokens.txt"), "--logits-out", logits])
    ours = safetensors_io.read(logits)["logits"]
    ref = safetensors_io.read(os.path.join(case_dir, "logits.safetensors"))[reference]
    error = relative_error(ours, ref)
    return error, error <= tolerance


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    fixtures = os.path.join(work, "fixtures")
    os.makedirs(work, exist_ok=True)
    run([sys.executable, os.path.join(REFERENCE, "make_fixtures.py"), fixtures])
    passed = failed = 0
    for case in sorted(os.listdir(fixtures)):
        case_dir = os.path.join(fixtures, case)
        with open(os.path.join(case_dir, "config.json")) as f:
            config = json.load(f)
        stored = config.get("torch_dtype", "float32")
        moe = "num_local_experts" in config or "num_experts" in config
        variants = [()] + ([("--no-fuse",)] if moe else [])
        checks = [("f32", "logits", F32_TOLERANCE)]
        if stored == "bfloat16":
            # bf16 weights and bf16 GEMMs against PyTorch in bf16, and the
            # same bf16 weights computed in fp32 against the fp32 reference.
            checks = [("bf16", "logits", BF16_TOLERANCE),
                      ("f32", "logits_f32ref", F32_TOLERANCE)]
        for (dtype, reference, tolerance), flags in (
                (check, flags) for check in checks for flags in variants):
            try:
                error, ok = check_case(bin_dir, case_dir, work, dtype, reference, tolerance,
                                       flags)
                message = f"rel_error {error:.3e} (tolerance {tolerance:g})"
            except Exception as exc:  # report and go on with the other cases
                ok, message = False, str(exc)
            print(f"{'PASS' if ok else 'FAIL'}: {case}{' '.join(('',) + flags)} "
                  f"[{dtype} vs {reference}] {message}")
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
