#!/usr/bin/python3
"""End-to-end check of moec --mode generate + moe-run generate against the
independent PyTorch reference (tests/reference/generate_reference.py), which
recomputes the full forward pass at every step without a cache.

For each fixture case, ragged prompts (one batch slot left empty) are
generated greedily to a context capacity that the longest prompt reaches
before --max-new-tokens, once with prompts prefilled whole and once in
chunks of 4 rows. Checked:
- the continuations equal the reference's argmax continuations; a
  different token is allowed only where the reference's logits of the two
  tokens are within TIE of each other (a near-tie that rounding may flip),
  and the sequence is compared no further;
- the logits each token was chosen from (prefill for the first, the cached
  attention of a decode step for the others) equal the reference's full
  forward logits at that position, to the e2e tolerance.

usage: test_generate.py BUILD_BIN_DIR WORK_DIR
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "reference")
sys.path.insert(0, REFERENCE)
import safetensors_io  # noqa: E402
from e2e_util import relative_error, run  # noqa: E402

MAX_NEW = 8
SPARE = 6  # capacity = longest prompt + SPARE < longest + MAX_NEW
# dtype: (logit tolerance (relative), near-tie bound (absolute logit gap))
TOLERANCE = {"f32": (1e-5, 1e-4), "bf16": (3e-2, 0.1)}
CASES = ["llama-gqa", "llama-headdim", "llama-sharded", "mixtral-top2of4",
         "mixtral-top1of3", "mixtral-bf16", "qwen2-bias", "qwen3-headnorm",
         "qwen2moe-shared", "qwen3moe-top8of64", "olmoe-clip"]


def ragged_prompts(case_dir):
    with open(os.path.join(case_dir, "tokens.txt")) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    return [line[:max(2, len(line) - 3 * b)] for b, line in enumerate(lines)]


def compare(ours_ids, ours_logits, ref, dtype):
    """(message, ok) for one prompt's continuation."""
    tolerance, tie = TOLERANCE[dtype]
    ref_ids, ref_logits = ref
    if len(ours_ids) != len(ref_ids):
        flipped = next((i for i, (a, b) in enumerate(zip(ours_ids, ref_ids)) if a != b), None)
        if flipped is None:
            return f"{len(ours_ids)} tokens, reference {len(ref_ids)}", False
    compared, flip = len(ref_ids), ""
    for i, (a, b) in enumerate(zip(ours_ids, ref_ids)):
        if a != b:
            gap = ref_logits[i][b] - ref_logits[i][a]
            if gap > tie:
                return f"step {i}: token {a}, reference {b} (logit gap {gap:.3g})", False
            compared, flip = i + 1, f", near-tie flip at step {i} (gap {gap:.2g})"
            break
    ours_t = torch.tensor(ours_logits[:compared])
    ref_t = torch.tensor(ref_logits[:compared])
    error = relative_error(ours_t, ref_t)
    ok = error <= tolerance
    return f"{len(ours_ids)} tokens, logits rel_error {error:.2e}{flip}", ok


def check(bin_dir, case_dir, work, dtype, prefill):
    name = os.path.basename(case_dir)
    tag = f"{name}-{dtype}-prefill{prefill or 'all'}"
    prompts = ragged_prompts(case_dir)
    batch, capacity = len(prompts) + 1, max(len(p) for p in prompts) + SPARE
    prompts_file = os.path.join(work, f"{tag}.prompts.txt")
    with open(prompts_file, "w") as f:
        f.write("".join(" ".join(p) + "\n" for p in prompts))
    artifact = os.path.join(work, f"{tag}.moex")
    run([os.path.join(bin_dir, "moec"), "compile", case_dir, "-o", artifact, "--mode",
         "generate", "--batch", str(batch), "--seq", str(capacity), "--dtype", dtype]
        + (["--prefill", str(prefill)] if prefill else []))
    out, logits = artifact + ".out.txt", artifact + ".logits.safetensors"
    run([os.path.join(bin_dir, "moe-run"), "generate", artifact, "--weights", case_dir,
         "--prompts", prompts_file, "--max-new-tokens", str(MAX_NEW), "--out", out,
         "--logits-out", logits])
    with open(out) as f:
        ours = [[int(t) for t in line.split()] for line in f.read().splitlines()]
    ours_logits = safetensors_io.read(logits)["logits"]
    ref_file = os.path.join(work, f"{tag}.reference.json")
    run([sys.executable, os.path.join(REFERENCE, "generate_reference.py"), case_dir,
         prompts_file, str(MAX_NEW), ref_file, "--capacity", str(capacity)]
        + (["--dtype", "bf16"] if dtype == "bf16" else []))
    with open(ref_file) as f:
        ref = json.load(f)
    results = []
    for b, ids in enumerate(ours):
        message, ok = compare(ids, ours_logits[b, :len(ids)].tolist(),
                              (ref["continuations"][b], ref["logits"][b]), dtype)
        results.append((f"{tag} prompt {b} (length {len(prompts[b])})", message, ok))
    if len(ours) != len(prompts):
        results.append((tag, f"{len(ours)} continuations for {len(prompts)} prompts", False))
    return results


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    fixtures = os.path.join(work, "fixtures")
    os.makedirs(work, exist_ok=True)
    run([sys.executable, os.path.join(REFERENCE, "make_fixtures.py"), fixtures])
    passed = failed = 0
    for case in CASES:
        case_dir = os.path.join(fixtures, case)
        with open(os.path.join(case_dir, "config.json")) as f:
            dtype = "bf16" if json.load(f).get("torch_dtype") == "bfloat16" else "f32"
        for prefill in (0, 4):
            try:
                results = check(bin_dir, case_dir, work, dtype, prefill)
            except Exception as exc:  # report and go on with the other cases
                results = [(case, str(exc), False)]
            for what, message, ok in results:
                print(f"{'PASS' if ok else 'FAIL'}: {what}: {message}")
                passed += ok
                failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
