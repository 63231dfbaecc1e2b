"""Checks an upcycled checkpoint against its dense source (Llama -> Mixtral,
Qwen3 -> Qwen3-MoE) with the exact invariants of each method (Nakamura et
al., ICLR 2025).

usage: check_upcycled.py DENSE_DIR MOE_DIR METHOD RATIO INDEX_SETS ROUTER_INIT [GRANULARITY]
With GRANULARITY G, expert e*G+g derives from neurons [g F/G, (g+1) F/G) of
the dense FFN and its down projection is scaled by G (by G/2 next to a
shared expert, which must be an exact copy of the dense FFN behind a zero
gate); router rows repeat in groups of G.
Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "reference"))
import safetensors_io  # noqa: E402

dense_dir, moe_dir, method, ratio, index_sets, router_init = sys.argv[1:7]
granularity = int(sys.argv[7]) if len(sys.argv) > 7 else 1
ratio = float(ratio)
dense = safetensors_io.read(os.path.join(dense_dir, "model.safetensors"))
moe = safetensors_io.read(os.path.join(moe_dir, "model.safetensors"))
with open(os.path.join(moe_dir, "config.json")) as f:
    config = json.load(f)
with open(os.path.join(dense_dir, "config.json")) as f:
    source_arch = json.load(f)["architectures"][0]
# The MoE family of each dense family: its architecture, sparse block, expert
# count key and expert matrices (gate, up, down: the dense matrix each copies).
FAMILIES = {
    "LlamaForCausalLM": ("MixtralForCausalLM", "mixtral", "block_sparse_moe",
                         "num_local_experts", ("w1", "w3", "w2")),
    "Qwen2ForCausalLM": ("Qwen2MoeForCausalLM", "qwen2_moe", "mlp", "num_experts",
                         ("gate_proj", "up_proj", "down_proj")),
    "Qwen3ForCausalLM": ("Qwen3MoeForCausalLM", "qwen3_moe", "mlp", "num_experts",
                         ("gate_proj", "up_proj", "down_proj")),
}
arch, model_type, block, count_key, (gate, up, down) = FAMILIES[source_arch]
experts, layers = config[count_key], config["num_hidden_layers"]
dense_layers = set(config.get("mlp_only_layers", []))
has_shared = "shared_expert_intermediate_size" in config
down_scale = granularity * (0.5 if has_shared else 1.0)
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}: {name} {detail}")


# Everything that is not an FFN is copied bit for bit.
shared = [n for n in dense if ".mlp." not in n
          or int(n.split(".")[2]) in dense_layers]
check("non-FFN tensors bit-identical", all(torch.equal(dense[n], moe[n]) for n in shared),
      f"({len(shared)} tensors)")
check("config", config["architectures"] == [arch]
      and config["model_type"] == model_type, str(config["architectures"]))

for layer in sorted(set(range(layers)) - dense_layers):
    prefix = f"model.layers.{layer}."
    whole = {gate: dense[prefix + "mlp.gate_proj.weight"],
             up: dense[prefix + "mlp.up_proj.weight"],
             down: dense[prefix + "mlp.down_proj.weight"]}
    if has_shared:
        copies = all(torch.equal(moe[f"{prefix}mlp.shared_expert.{n}.weight"],
                                 dense[f"{prefix}mlp.{n}.weight"])
                     for n in ("gate_proj", "up_proj", "down_proj"))
        check(f"layer {layer} shared expert is the dense FFN", copies)
        check(f"layer {layer} shared expert gate is zero",
              not moe[f"{prefix}mlp.shared_expert_gate.weight"].any())
    d_ff = whole[gate].shape[0] // granularity
    count = math.floor(ratio * d_ff)
    chosen_sets = {}
    for e in range(experts):
        g = e % granularity
        neurons = slice(g * d_ff, (g + 1) * d_ff)
        sources = {m: (w[neurons] if m != down else w[:, neurons] * down_scale)
                   for m, w in whole.items()}
        for m, source in sources.items():
            w = moe[f"{prefix}{block}.experts.{e}.{m}.weight"]
            # Neurons are rows of w1/w3 and columns of w2.
            neurons = (w != source).any(dim=1) if m != down else (w != source).any(dim=0)
            changed = neurons.nonzero().flatten().tolist()
            chosen_sets[(e, m)] = changed
            expected = 0 if method == "naive" else count
            where = f"layer {layer} expert {e} {m}"
            if len(changed) != expected:
                check(f"{where}: {expected} neurons changed", False, f"got {len(changed)}")
                continue
            if method == "naive" or count == 0:
                continue
            keep = torch.ones(d_ff, dtype=torch.bool)
            keep[changed] = False
            same = (w[keep] == source[keep]).all() if m != down else (w[:, keep] == source[:, keep]).all()
            if not same:
                check(f"{where}: unchosen neurons bit-identical", False)
            scale = down_scale if m == down else 1.0
            new = (w[changed] if m != down else w[:, changed]).double() / scale
            old = (source[changed] if m != down else source[:, changed]).double() / scale
            n = new.numel()
            if method == "drop":
                # Drawn from Normal(mean, std) of the chosen slice of the source:
                # the sample mean is within 5 standard errors (std / sqrt(n)) and
                # the sample std within 5 relative standard errors (1 / sqrt(2n)).
                mean, std = old.mean().item(), old.std().item()
                ok = (abs(new.mean().item() - mean) <= 5 * std / math.sqrt(n)
                      and abs(new.std().item() / std - 1) <= 5 / math.sqrt(2 * n))
                if not ok:
                    check(f"{where}: resampled moments", False,
                          f"mean {new.mean().item():.5f} vs {mean:.5f}, std {new.std().item():.5f} vs {std:.5f}")
            else:  # noise: the difference is Normal(0, 0.02^2)
                diff = new - old
                ok = (abs(diff.mean().item()) <= 5 * 0.02 / math.sqrt(n)
                      and abs(diff.std().item() / 0.02 - 1) <= 5 / math.sqrt(2 * n))
                if not ok:
                    check(f"{where}: noise variance", False, f"std {diff.std().item():.5f}")
        if method != "naive" and count > 0 and index_sets == "shared":
            sets = {tuple(chosen_sets[(e, m)]) for m in sources}
            if len(sets) != 1:
                check(f"layer {layer} expert {e}: shared index sets coincide", False)
    router = moe[prefix + block + ".gate.weight"].double()
    if granularity > 1:
        groups = router.view(experts // granularity, granularity, -1)
        check(f"layer {layer} router rows repeat in groups of {granularity}",
              bool((groups == groups[:, :1]).all()))
    # Centred uniform has mean exactly 0 (up to rounding); normal within 5 SE.
    n = router.numel()
    ok = abs(router.mean().item()) <= 5 * 0.02 / math.sqrt(n) and \
        abs(router.std().item() / 0.02 - 1) <= 5 / math.sqrt(2 * n) + 0.05
    check(f"layer {layer} router mean ~0, std ~0.02", ok,
          f"(mean {router.mean().item():.2e}, std {router.std().item():.4f})")
    if router_init == "uniform":
        bound = 0.02 * math.sqrt(3) * (1 + 1e-3)
        check(f"layer {layer} router is centred uniform", router.abs().max().item() <= 2 * bound)
    if method != "naive" and count > 0:
        w1 = [moe[f"{prefix}{block}.experts.{e}.{gate}.weight"] for e in range(experts)]
        check(f"layer {layer} experts differ from one another",
              all(not torch.equal(w1[a], w1[b]) for a in range(experts) for b in range(a)))

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
