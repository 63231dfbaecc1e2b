#!/usr/bin/python3
"""Generates the end-to-end fixtures: random tiny checkpoints with awkward
sizes in the Hugging Face layout, token files, and reference logits from
hf_reference.py. Deterministic (a fixed torch.Generator seed per case,
derived from its name; one CPU thread): the same bytes on every run.

usage: make_fixtures.py OUT_DIR

OUT_DIR/CASE/ holds
  config.json              HF config (architectures, model_type, torch_dtype)
  model.safetensors        the weights (llama-sharded: two shard files and
                           model.safetensors.index.json instead)
  tokens.txt               one sequence per line, whitespace-separated ids
  logits.safetensors       fp32 `logits` [batch, longest sequence, vocab],
                           zero past the end of shorter sequences; Mixtral
                           cases also `router_logits.{layer}` [batch, longest,
                           experts]; bf16 cases also `logits_f32ref` (and
                           `router_logits_f32ref.{layer}`): the same
                           bf16-rounded weights computed in fp32.
"""
import json
import os
import sys
import time
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference  # noqa: E402
import safetensors_io  # noqa: E402

# Weight scales. Matrices use std 0.08 rather than HF's initializer_range
# 0.02: at 0.02 on these tiny widths attention is nearly uniform and the FFN
# adds ~5% of the logits, so a RoPE-convention bug moves the logits by only
# ~4e-3 and would pass the bf16 tolerance (2e-2); at 0.08 it moves them by
# ~1e-1 and dropping the MoE by ~4e-1. Router std 0.5 gives decisive routing;
# norm weights are Normal(1, 0.1) so that they matter.
MATRIX_STD = 0.08
ROUTER_STD = 0.5
NORM_STD = 0.1
# Biases large enough that dropping one moves the logits well past the f32
# tolerance.
BIAS_STD = 0.1

# Tokens are redrawn until every top-k choice of every token and layer wins
# by at least this margin in router logits (between the k-th and (k+1)-th
# expert), so that rounding differences cannot flip a routing decision.
F32_MARGIN = 1e-3
BF16_MARGIN = 0.2
MAX_DRAWS = 200

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
         "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "tie_word_embeddings": False, "torch_dtype": "float32"}
MIXTRAL = dict(LLAMA, architectures=["MixtralForCausalLM"], model_type="mixtral",
               rope_theta=1e6, router_aux_loss_coef=0.02)
QWEN2 = dict(LLAMA, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
             rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=4096)
QWEN3 = dict(QWEN2, architectures=["Qwen3ForCausalLM"], model_type="qwen3",
             attention_bias=False)
QWEN2_MOE = dict(QWEN2, architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
                 router_aux_loss_coef=0.02)
QWEN3_MOE = dict(QWEN3, architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe",
                 router_aux_loss_coef=0.02)
OLMOE = dict(LLAMA, architectures=["OlmoeForCausalLM"], model_type="olmoe",
             router_aux_loss_coef=0.02)

# name: (config, sequence lengths)
CASES = {
    # GQA 6/2, head_dim 12 (not a power of two), sequence 13.
    "llama-gqa": (dict(LLAMA, vocab_size=97, hidden_size=72, intermediate_size=100,
                       num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2),
                  [13, 13]),
    # head_dim given explicitly (4 heads x 20 != hidden 64), tied embeddings,
    # sequences of different lengths (moe-run pads them; logits past the end
    # are zero).
    "llama-headdim": (dict(LLAMA, vocab_size=89, hidden_size=64, intermediate_size=96,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                           head_dim=20, tie_word_embeddings=True),
                      [9, 5, 7]),
    "mixtral-top2of4": (dict(MIXTRAL, vocab_size=101, hidden_size=48, intermediate_size=40,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             num_local_experts=4, num_experts_per_tok=2),
                        [11, 11, 11]),
    # Top-1 of 3 experts, multi-query attention (5 heads, 1 KV head, head_dim 8).
    "mixtral-top1of3": (dict(MIXTRAL, vocab_size=64, hidden_size=40, intermediate_size=56,
                             num_hidden_layers=3, num_attention_heads=5, num_key_value_heads=1,
                             num_local_experts=3, num_experts_per_tok=1),
                        [17, 17]),
    "mixtral-bf16": (dict(MIXTRAL, vocab_size=101, hidden_size=48, intermediate_size=40,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          num_local_experts=4, num_experts_per_tok=2, torch_dtype="bfloat16"),
                     [11, 11]),
    # q/k/v biases, GQA 4/2, ragged sequences.
    "qwen2-bias": (dict(QWEN2, vocab_size=83, hidden_size=48, intermediate_size=72,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
                   [9, 6]),
    # Per-head q/k norm, head_dim 16 (4 heads x 16 != hidden 40), tied embeddings.
    "qwen3-headnorm": (dict(QWEN3, vocab_size=79, hidden_size=40, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            head_dim=16, tie_word_embeddings=True),
                       [10, 10]),
    # Shared expert with its sigmoid gate, top-2 of 6 without renormalising,
    # q/k/v biases; layer 2 dense (mlp_only_layers) with intermediate_size.
    "qwen2moe-shared": (dict(QWEN2_MOE, vocab_size=71, hidden_size=32, intermediate_size=56,
                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                             num_experts=6, num_experts_per_tok=2, moe_intermediate_size=20,
                             shared_expert_intermediate_size=36, norm_topk_prob=False,
                             decoder_sparse_step=1, mlp_only_layers=[2]),
                        [8, 8]),
    "qwen2moe-bf16": (dict(QWEN2_MOE, vocab_size=71, hidden_size=32, intermediate_size=56,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           num_experts=6, num_experts_per_tok=2, moe_intermediate_size=20,
                           shared_expert_intermediate_size=36, norm_topk_prob=False,
                           torch_dtype="bfloat16"),
                      [8, 8]),
    # Top-8 of 64 renormalised, per-head q/k norm, every second layer sparse
    # (decoder_sparse_step 2: layer 0 dense).
    "qwen3moe-top8of64": (dict(QWEN3_MOE, vocab_size=67, hidden_size=32, intermediate_size=48,
                               num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=1, head_dim=8, num_experts=64,
                               num_experts_per_tok=8, moe_intermediate_size=12,
                               norm_topk_prob=True, decoder_sparse_step=2),
                          [7, 7]),
    # Whole-projection q/k norm, clip_qkv (active on these values), top-2 of 8
    # without renormalising.
    "olmoe-clip": (dict(OLMOE, vocab_size=73, hidden_size=48, intermediate_size=24,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        num_experts=8, num_experts_per_tok=2, norm_topk_prob=False,
                        clip_qkv=1.5),
                   [9, 9]),
    # Weights split over two shard files listed in model.safetensors.index.json.
    "llama-sharded": (dict(LLAMA, vocab_size=50, hidden_size=32, intermediate_size=48,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
                      [6, 6]),
}


def shapes(config):
    """Checkpoint tensor names and shapes, in HF order."""
    c = hf_reference.Config(config)
    d, v, hd = c.hidden, c.vocab, c.head_dim
    out = {"model.embed_tokens.weight": (v, d)}

    def mlp(prefix, f, names=("gate_proj", "up_proj", "down_proj")):
        gate, up, down = names
        matrices = {gate: (f, d), up: (f, d), down: (d, f)}
        # Mixtral's checkpoints list w1, w2, w3.
        for name in sorted(matrices) if gate == "w1" else matrices:
            out[prefix + name + ".weight"] = matrices[name]

    for i in range(c.layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (d,)
        for name, width in (("q", c.heads * hd), ("k", c.kv_heads * hd), ("v", c.kv_heads * hd)):
            out[f"{p}self_attn.{name}_proj.weight"] = (width, d)
            if c.qkv_bias:
                out[f"{p}self_attn.{name}_proj.bias"] = (width,)
            if c.qk_norm and name != "v":
                out[f"{p}self_attn.{name}_norm.weight"] = (hd if c.qk_norm == "head" else width,)
        out[p + "self_attn.o_proj.weight"] = (d, c.heads * hd)
        out[p + "post_attention_layernorm.weight"] = (d,)
        ffn = c.ffn_prefix(i)
        if i in c.sparse:
            out[ffn + "gate.weight"] = (c.experts, d)
            for e in range(c.experts):
                mlp(f"{ffn}experts.{e}.", c.expert_ffn, c.expert_names)
            if c.shared_ffn:
                mlp(ffn + "shared_expert.", c.shared_ffn)
                out[ffn + "shared_expert_gate.weight"] = (1, d)
        else:
            mlp(ffn, c.intermediate)
    out["model.norm.weight"] = (d,)
    if not c.tied:
        out["lm_head.weight"] = (v, d)
    return out


def random_weights(config, generator):
    weights = {}
    for name, shape in shapes(config).items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith("norm.weight"):
            weights[name] = 1.0 + NORM_STD * noise
        elif name.endswith((".gate.weight", "shared_expert_gate.weight")):
            weights[name] = ROUTER_STD * noise
        elif name.endswith(".bias"):
            weights[name] = BIAS_STD * noise
        else:
            weights[name] = MATRIX_STD * noise
    return weights


def routing_margin(routers, lengths, top_k):
    """Smallest gap between the k-th and (k+1)-th router logit over every
    real token of every layer (inf for dense models)."""
    margin = float("inf")
    for router in routers:
        for b, n in enumerate(lengths):
            ranked = router[b, :n].double().sort(dim=-1, descending=True).values
            margin = min(margin, float((ranked[:, top_k - 1] - ranked[:, top_k]).min()))
    return margin


def make_case(out_dir, name, config, lengths):
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    bf16 = config["torch_dtype"] == "bfloat16"
    weights = random_weights(config, generator)
    weights = {k: v.to(torch.bfloat16 if bf16 else torch.float32) for k, v in weights.items()}
    top_k = config.get("num_experts_per_tok", 0)

    # Draw tokens (and compute the references) until routing is unambiguous.
    for draw in range(MAX_DRAWS):
        sequences = [torch.randint(0, config["vocab_size"], (n,), generator=generator).tolist()
                     for n in lengths]
        outputs = {}
        logits, routers = hf_reference.forward_batch(config, weights, sequences)
        outputs["logits"] = logits
        outputs.update({f"router_logits.{i}": r for i, r in enumerate(routers)})
        margin = routing_margin(routers, lengths, top_k)
        if bf16:
            logits32, routers32 = hf_reference.forward_batch(config, weights, sequences,
                                                             torch.float32)
            outputs["logits_f32ref"] = logits32
            outputs.update({f"router_logits_f32ref.{i}": r for i, r in enumerate(routers32)})
            margin = min(margin, routing_margin(routers32, lengths, top_k))
        if margin >= (BF16_MARGIN if bf16 else F32_MARGIN):
            break
    else:
        raise RuntimeError(f"{name}: no token draw with an unambiguous routing")

    case = os.path.join(out_dir, name)
    os.makedirs(case, exist_ok=True)
    with open(os.path.join(case, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
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
            f.write("\n")
    else:
        safetensors_io.write(os.path.join(case, "model.safetensors"), weights, {"format": "pt"})
    with open(os.path.join(case, "tokens.txt"), "w") as f:
        f.write("".join(" ".join(map(str, s)) + "\n" for s in sequences))
    safetensors_io.write(os.path.join(case, "logits.safetensors"), outputs)
    routing = f", routing margin {margin:.3g} (draw {draw + 1})" if top_k else ""
    print(f"{name}: {config['architectures'][0]} {config['torch_dtype']}, "
          f"batch {len(sequences)}, lengths {lengths}{routing}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUT_DIR")
    out_dir = sys.argv[1]
    torch.set_num_threads(1)  # tiny matrices; one thread also fixes the summation order
    start = time.monotonic()
    os.makedirs(out_dir, exist_ok=True)
    for name, (config, lengths) in CASES.items():
        make_case(out_dir, name, config, lengths)
    print(f"{len(CASES)} cases in {out_dir} ({time.monotonic() - start:.1f} s)")


if __name__ == "__main__":
    main()
