#!/usr/bin/python3
"""End-to-end check of moec's training against the independent PyTorch
reference (tests/reference/train_reference.py, float64 autograd): for a tiny
Mixtral and a tiny tied Llama, from the same checkpoint and batch, compare
the losses and every parameter's gradient of the first step, and the weights
after 3 AdamW steps with warm-up, cosine decay and clipping active; then the
Mixtral again with bf16 compute (fp32 masters): losses and gradients to
looser bounds; the Llama with its batch split into two accumulated
micro-batches; the Mixtral compiled with --recompute; and the Mixtral on a
batch with a short, padded line and the z-loss on (padding must stay out of
every loss, the router losses included), also with --keep-expert-hidden. The Mixtral runs
both with its MoE blocks fused (the default) and unfused (--no-fuse), and
the two must also agree with each other to fp32 rounding.

usage: test_training.py BUILD_BIN_DIR WORK_DIR
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "reference")
sys.path.insert(0, REFERENCE)
import hf_reference  # noqa: E402
import make_fixtures  # noqa: E402
import safetensors_io  # noqa: E402
from e2e_util import relative_error, run  # noqa: E402

# Relative bounds of fp32 training against float64: losses, L2 per
# parameter of gradients and of the weights after 3 steps. bf16 compute
# (bf16 weight copies and GEMM inputs, fp32 masters and accumulation) is
# held to looser ones on losses and gradients only: Adam's first steps move
# each weight by about +-lr whatever the gradient's size, so bf16 noise on a
# tiny gradient flips a whole update and no weight bound is meaningful.
TOLERANCES = {"f32": {"loss": 1e-5, "grad": 1e-4, "weight": 1e-4},
              "bf16": {"loss": 1e-2, "grad": 5e-2, "weight": None}}
# Even in fp32, steps 2 and 3 amplify rounding on the smallest gradient
# elements: on the padded batch, the unlabelled tail skipping the experts
# (other GEMM shapes, so other sums) moves step-1 gradients by 1e-6 and the
# weights after 3 steps by 1.1e-4 (measured, against 5e-5 for fused with
# the tail kept). Padded fp32 runs get this weight bound.
PADDED_WEIGHT_BOUND = 3e-4
MARGIN = 1e-3              # router top-k decisions must win by this much
OPTIMIZER = ["--steps", "3", "--lr", "3e-2", "--min-lr", "3e-3", "--warmup-steps", "1",
             "--weight-decay", "0.1", "--clip", "0.05"]

MIXTRAL = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
           "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
           "num_local_experts": 4, "num_experts_per_tok": 2,
           "router_aux_loss_coef": 0.02, "torch_dtype": "float32"}
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
         "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
         "torch_dtype": "float32"}
# Qwen2 and Qwen3 dense sources: q/k/v biases; per-head q/k norm with
# head_dim 12 and tied embeddings.
# Qwen2-MoE: q/k/v biases, a gated shared expert, routing weights not
# renormalised, layer 1 dense. Qwen3-MoE: per-head q/k norm, head_dim 12,
# top-4 of 16 renormalised. OLMoE: whole-projection q/k norm and clip_qkv.
QWEN2_MOE = dict(LLAMA, architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
                 tie_word_embeddings=False, num_experts=4, num_experts_per_tok=2,
                 moe_intermediate_size=24, shared_expert_intermediate_size=40,
                 norm_topk_prob=False, mlp_only_layers=[1], router_aux_loss_coef=0.02)
QWEN3_MOE = dict(LLAMA, architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe",
                 head_dim=12, num_key_value_heads=2, num_experts=16, num_experts_per_tok=4,
                 moe_intermediate_size=16, norm_topk_prob=True, router_aux_loss_coef=0.02)
QWEN2 = dict(LLAMA, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
             num_key_value_heads=2)
QWEN3 = dict(LLAMA, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=12)
OLMOE = dict(LLAMA, architectures=["OlmoeForCausalLM"], model_type="olmoe",
             tie_word_embeddings=False, num_experts=4, num_experts_per_tok=2,
             intermediate_size=24, clip_qkv=2.0, router_aux_loss_coef=0.02)




def make_case(work, name, config, batch, seq, lengths=None):
    """A random checkpoint and a batch file whose routing is unambiguous at
    every labelled position. Lines have `lengths` tokens (default seq + 1);
    moe-run pads shorter ones with id 0 and no label."""
    generator = torch.Generator().manual_seed(7)
    weights = make_fixtures.random_weights(config, generator)
    top_k = config.get("num_experts_per_tok", 0)
    lengths = lengths or [seq + 1] * batch
    for _ in range(50):
        full = torch.randint(0, config["vocab_size"], (batch, seq + 1), generator=generator)
        lines = [row[:n] for row, n in zip(full.tolist(), lengths)]
        inputs = [line[:-1] + [0] * (seq + 1 - len(line)) for line in lines]
        _, routers = hf_reference.forward_batch(config, weights, inputs)
        if make_fixtures.routing_margin(routers, [n - 1 for n in lengths], top_k) >= MARGIN:
            break
    else:
        raise RuntimeError(f"{name}: no batch with an unambiguous routing")
    case = os.path.join(work, name)
    os.makedirs(case, exist_ok=True)
    with open(os.path.join(case, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    safetensors_io.write(os.path.join(case, "model.safetensors"), weights, {"format": "pt"})
    batch_file = os.path.join(case, "batch.txt")
    with open(batch_file, "w") as f:
        f.write("".join(" ".join(map(str, line)) + "\n" for line in lines))
    return case, batch_file


def prepare(bin_dir, work, name, config, dtype="f32", accumulate=1, compile_flags=(),
            lengths=None, z_coef=0.0):
    """The case's checkpoint, batch, training artifact and the reference's
    losses, gradients and weights after 3 steps; returns what compare()
    needs, paths relative to `work`. With `accumulate` > 1 the artifact
    takes 1/accumulate of the batch and moe-run averages that many
    micro-batches per step (exact for the mean cross-entropy of equally
    long sequences, so used on dense models). `lengths` gives lines shorter
    than seq + 1 (padding, left out of every loss); `z_coef` turns the
    router z-loss on in both."""
    batch, seq = 2 * accumulate, 8
    tolerance = dict(TOLERANCES[dtype])
    if lengths and tolerance["weight"] is not None:
        tolerance["weight"] = PADDED_WEIGHT_BOUND
    if z_coef:
        compile_flags = (*compile_flags, "--z-loss-coef", str(z_coef))
    name = (f"{name}-{dtype}" + (f"-accumulate{accumulate}" if accumulate > 1 else "")
            + "".join(compile_flags).replace("--", "-") + ("-padded" if lengths else ""))
    # A directory of its own: cases prepared together keep their batches.
    case, batch_file = make_case(work, name, config, batch, seq, lengths)
    artifact = os.path.join(work, f"{name}.moex")
    run([os.path.join(bin_dir, "moec"), "compile", case, "-o", artifact, "--mode", "train",
         "--batch", str(batch // accumulate), "--seq", str(seq), "--dtype", dtype,
         *compile_flags])
    ref_file = os.path.join(work, f"{name}-reference.st")
    run(["/usr/bin/python3", os.path.join(REFERENCE, "train_reference.py"), case, batch_file,
         ref_file, "--z-coef", str(z_coef)] + OPTIMIZER)
    return {"name": name, "case": os.path.relpath(case, work),
            "batch": os.path.relpath(batch_file, work),
            "artifact": os.path.relpath(artifact, work),
            "reference": os.path.relpath(ref_file, work), "tolerance": tolerance,
            "accumulate": accumulate}


def train_and_compare(bin_dir, work, prepared, device="cpu"):
    """Trains the prepared case with moe-run on `device` and holds its
    losses, gradients and weights to the reference; returns (ok, gradients
    file, trained weights file)."""
    name = prepared["name"] + ("" if device == "cpu" else f"-{device}")
    path = lambda key: os.path.join(work, prepared[key])  # noqa: E731
    tolerance = prepared["tolerance"]
    ours_dir, grads = os.path.join(work, f"{name}-trained"), os.path.join(work, f"{name}-grads.st")
    run([os.path.join(bin_dir, "moe-run"), "train", path("artifact"), "--weights", path("case"),
         "--tokens", path("batch"), "--save", ours_dir, "--grads-out", grads,
         "--grad-accum", str(prepared["accumulate"]), "--device", device] + OPTIMIZER)
    ref, ours = safetensors_io.read(path("reference")), safetensors_io.read(grads)
    trained = safetensors_io.read(os.path.join(ours_dir, "model.safetensors"))

    failures = []
    for loss in ("ce", "aux", "total"):
        error = abs(float(ours[f"loss.{loss}"]) - float(ref[f"loss.{loss}"])) / max(
            abs(float(ref[f"loss.{loss}"])), 1e-12)
        if error > tolerance["loss"]:
            failures.append(f"loss.{loss}: relative error {error:.2e}")
    worst_grad = worst_weight = (0.0, "")
    for key in ref:
        if key.startswith("grad."):
            error = relative_error(ours[key], ref[key])
            worst_grad = max(worst_grad, (error, key))
        elif key.startswith("weights."):
            param = key[len("weights."):]
            error = relative_error(trained[param].float(), ref[key])
            worst_weight = max(worst_weight, (error, param))
    if worst_grad[0] > tolerance["grad"]:
        failures.append(f"{worst_grad[1]}: relative error {worst_grad[0]:.2e}")
    if tolerance["weight"] is not None and worst_weight[0] > tolerance["weight"]:
        failures.append(f"weights {worst_weight[1]}: relative error {worst_weight[0]:.2e}")
    print(f"{name}: ce {float(ours['loss.ce']):.6f} (reference {float(ref['loss.ce']):.6f}), "
          f"worst gradient error {worst_grad[0]:.2e} ({worst_grad[1]}), "
          f"worst weight error after 3 steps {worst_weight[0]:.2e} ({worst_weight[1]})")
    for failure in failures:
        print(f"  FAIL {failure}")
    return not failures, grads, os.path.join(ours_dir, "model.safetensors")


def check(bin_dir, work, name, config, dtype="f32", **options):
    """prepare() then train_and_compare() on the CPU."""
    return train_and_compare(bin_dir, work,
                             prepare(bin_dir, work, name, config, dtype, **options))


# Fused and unfused blocks differ only in the order of a few fp32 sums:
# losses and gradients agree to that rounding. The weights after 3 steps get
# the bound they have against the reference, since Adam's normalised first
# steps turn a rounding-sized gradient difference into a larger one.
FUSION_TOLERANCE = {"gradients": 1e-5, "weights": 1e-4}


def compare_fusion(fused, unfused, label="fused vs unfused"):
    """Fused and unfused runs (or two fused ones): their losses and
    gradients, then their weights after 3 steps, to FUSION_TOLERANCE."""
    ok = fused[0] and unfused[0]
    for (what, bound), fused_file, unfused_file in zip(
            FUSION_TOLERANCE.items(), fused[1:], unfused[1:]):
        a, b = safetensors_io.read(fused_file), safetensors_io.read(unfused_file)
        worst = max((relative_error(a[key].double(), b[key].double()), key) for key in b)
        ok &= worst[0] <= bound
        print(f"{label} {what}: worst relative difference {worst[0]:.2e} "
              f"({worst[1]}, bound {bound:g})" + ("" if worst[0] <= bound else "  FAIL"))
    return ok


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    fused = check(bin_dir, work, "train-mixtral", MIXTRAL)
    unfused = check(bin_dir, work, "train-mixtral", MIXTRAL, compile_flags=["--no-fuse"])
    fused_recompute = check(bin_dir, work, "train-mixtral", MIXTRAL,
                            compile_flags=["--recompute"])
    unfused_recompute = check(bin_dir, work, "train-mixtral", MIXTRAL,
                              compile_flags=["--no-fuse", "--recompute"])
    # The padded batch (unlabelled tails skip the experts) with the fused
    # blocks recomputing their hidden states and keeping them: every
    # optional operand of the fused backward at once.
    padded_fused = check(bin_dir, work, "train-mixtral", MIXTRAL, lengths=[9, 5],
                         z_coef=0.01)
    padded_kept = check(bin_dir, work, "train-mixtral", MIXTRAL, lengths=[9, 5],
                        z_coef=0.01, compile_flags=["--keep-expert-hidden"])
    families = [check(bin_dir, work, "train-qwen3moe", QWEN3_MOE),
                check(bin_dir, work, "train-qwen3moe", QWEN3_MOE, compile_flags=["--no-fuse"])]
    ok = all([compare_fusion(fused, unfused),
              compare_fusion(*families),
              check(bin_dir, work, "train-qwen2", QWEN2)[0],
              check(bin_dir, work, "train-qwen3", QWEN3)[0],
              check(bin_dir, work, "train-qwen2moe", QWEN2_MOE)[0],
              check(bin_dir, work, "train-qwen2moe", QWEN2_MOE, "bf16")[0],
              check(bin_dir, work, "train-olmoe", OLMOE, lengths=[9, 5])[0],
              compare_fusion(fused_recompute, unfused_recompute),
              check(bin_dir, work, "train-llama-tied", LLAMA)[0],
              check(bin_dir, work, "train-mixtral", MIXTRAL, "bf16")[0],
              check(bin_dir, work, "train-mixtral", MIXTRAL, "bf16",
                    compile_flags=["--no-fuse"])[0],
              check(bin_dir, work, "train-llama-tied", LLAMA, accumulate=2)[0],
              compare_fusion(padded_fused, padded_kept, "recomputed vs kept hidden states"),
              check(bin_dir, work, "train-mixtral", MIXTRAL, lengths=[9, 5], z_coef=0.01,
                    compile_flags=["--no-fuse"])[0]])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
