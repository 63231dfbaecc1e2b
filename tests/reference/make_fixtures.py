#!/usr/bin/python3
"""Generates the end-to-end fixtures: random tiny checkpoints with awkward
sizes in the Hugging Face layout, token files, and reference logits from
hf_reference.py. Deterministic (fixed seeds): same bytes on every run.

usage: make_fixtures.py OUT_DIR
Each case directory holds config.json, model.safetensors (or shards and an
index), tokens.txt, and logits.safetensors with fp32 `logits`
[batch, longest sequence, vocab] (zero past each sequence's end); bf16 cases
also hold `logits_f32ref`, the same bf16 weights computed in fp32.
"""
import json
import os
import sys

import torch

import hf_reference
import safetensors_io

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
         "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "tie_word_embeddings": False, "torch_dtype": "float32"}
MIXTRAL = dict(LLAMA, architectures=["MixtralForCausalLM"], model_type="mixtral",
               router_aux_loss_coef=0.02)

CASES = {
    # GQA 6/2, head_dim 12 (not a power of two), sequence 13.
    "llama-gqa": (dict(LLAMA, vocab_size=97, hidden_size=72, intermediate_size=100,
                       num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2),
                  [13, 13]),
    # head_dim given explicitly (20 x 4 heads != hidden 64), tied embeddings,
    # sequences of different lengths (padded by moe-run).
    "llama-headdim-tied": (dict(LLAMA, vocab_size=89, hidden_size=64, intermediate_size=96,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                head_dim=20, tie_word_embeddings=True),
                           [9, 5, 7]),
    "mixtral-top2of4": (dict(MIXTRAL, vocab_size=101, hidden_size=48, intermediate_size=40,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             num_local_experts=4, num_experts_per_tok=2, rope_theta=1e6),
                        [11, 11, 11]),
    "mixtral-top1of3": (dict(MIXTRAL, vocab_size=64, hidden_size=40, intermediate_size=56,
                             num_hidden_layers=3, num_attention_heads=5, num_key_value_heads=1,
                             num_local_experts=3, num_experts_per_tok=1),
                        [17, 17]),
    "mixtral-bf16": (dict(MIXTRAL, vocab_size=101, hidden_size=48, intermediate_size=40,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          num_local_experts=4, num_experts_per_tok=2, torch_dtype="bfloat16"),
                     [11, 11]),
    "llama-sharded": (dict(LLAMA, vocab_size=50, hidden_size=32, intermediate_size=48,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
                      [6, 6]),
}


def shapes(config):
    """Checkpoint tensor names and shapes, in HF order."""
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim") or d // heads
    out = {"model.embed_tokens.weight": (v, d)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (d,)
        out[p + "self_attn.q_proj.weight"] = (heads * hd, d)
        out[p + "self_attn.k_proj.weight"] = (kv * hd, d)
        out[p + "self_attn.v_proj.weight"] = (kv * hd, d)
        out[p + "self_attn.o_proj.weight"] = (d, heads * hd)
        out[p + "post_attention_layernorm.weight"] = (d,)
        if "num_local_experts" in config:
            out[p + "block_sparse_moe.gate.weight"] = (config["num_local_experts"], d)
            for e in range(config["num_local_experts"]):
                q = f"{p}block_sparse_moe.experts.{e}."
                out[q + "w1.weight"] = (f, d)
                out[q + "w2.weight"] = (d, f)
                out[q + "w3.weight"] = (f, d)
        else:
            out[p + "mlp.gate_proj.weight"] = (f, d)
            out[p + "mlp.up_proj.weight"] = (f, d)
            out[p + "mlp.down_proj.weight"] = (d, f)
    out["model.norm.weight"] = (d,)
    if not config.get("tie_word_embeddings"):
        out["lm_head.weight"] = (v, d)
    return out


def random_weights(config, generator):
    weights = {}
    for name, shape in shapes(config).items():
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            # Norm weights away from 1 so that they matter.
            weights[name] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        elif name.endswith("gate.weight") and "experts" not in name:
            weights[name] = 0.5 * torch.randn(shape, generator=generator)  # decisive routing
        else:
            weights[name] = 0.08 * torch.randn(shape, generator=generator)
    return weights


def reference_logits(config, weights, sequences, dtype=None):
    """Each sequence on its own (causal: padding never matters), zero-padded."""
    longest = max(len(s) for s in sequences)
    out = torch.zeros(len(sequences), longest, config["vocab_size"])
    with torch.no_grad():
        for b, sequence in enumerate(sequences):
            logits, _ = hf_reference.forward(config, weights, torch.tensor([sequence]), dtype)
            out[b, :len(sequence)] = logits[0]
    return out


def make_case(out_dir, name, config, lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    weights = random_weights(config, generator)
    stored = torch.bfloat16 if config["torch_dtype"] == "bfloat16" else torch.float32
    weights = {k: v.to(stored) for k, v in weights.items()}
    sequences = [torch.randint(0, config["vocab_size"], (n,), generator=generator).tolist()
                 for n in lengths]

    case = os.path.join(out_dir, name)
    os.makedirs(case, exist_ok=True)
    with open(os.path.join(case, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if name.endswith("sharded"):
        names = list(weights)
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half],
                  "model-00002-of-00002.safetensors": names[half:]}
        weight_map = {}
        for shard, members in shards.items():
            safetensors_io.write(os.path.join(case, shard), {n: weights[n] for n in members},
                                 {"format": "pt"})
            weight_map.update({n: shard for n in members})
        total = sum(t.numel() * t.element_size() for t in weights.values())
        with open(os.path.join(case, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    else:
        safetensors_io.write(os.path.join(case, "model.safetensors"), weights, {"format": "pt"})
    with open(os.path.join(case, "tokens.txt"), "w") as f:
        f.write("".join(" ".join(map(str, s)) + "\n" for s in sequences))

    outputs = {"logits": reference_logits(config, weights, sequences)}
    if stored == torch.bfloat16:
        outputs["logits_f32ref"] = reference_logits(config, weights, sequences, torch.float32)
    safetensors_io.write(os.path.join(case, "logits.safetensors"), outputs)
    print(f"{name}: batch {len(sequences)}, lengths {lengths}")


def main():
    out_dir = sys.argv[1]
    torch.manual_seed(0)
    for seed, (name, (config, lengths)) in enumerate(CASES.items()):
        make_case(out_dir, name, config, lengths, 1000 + seed)


if __name__ == "__main__":
    main()
