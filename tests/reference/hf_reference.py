#!/usr/bin/python3
"""An independent PyTorch implementation of the forward pass of Hugging Face
LlamaForCausalLM and MixtralForCausalLM, written from the semantics of the
transformers modeling files (modeling_llama.py, modeling_mixtral.py, eager
attention). It imports neither transformers nor anything of moec; the
end-to-end tests compare moe-run's logits with the logits computed here.

Computation happens in the dtype of the weights (float32, or bfloat16 with
HF's casts: RMSNorm and softmaxes in fp32, RoPE tables cast to the compute
dtype), or in the dtype given by `dtype` / `--dtype`.

usage: hf_reference.py CHECKPOINT_DIR TOKENS_FILE OUT.safetensors
                       [--dtype {f32,bf16,f16}] [--router-logits]
OUT holds fp32 `logits` [batch, longest sequence, vocab], zero past the end
of shorter sequences (each sequence runs on its own, so padding never
matters), and with --router-logits `router_logits.{layer}` [batch, longest,
experts] (fp32, zero past the end) for Mixtral checkpoints.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

DTYPES = {"f32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
          "bfloat16": torch.bfloat16, "f16": torch.float16, "float16": torch.float16}


class Config:
    """The fields of a HF config.json that the forward pass uses."""

    def __init__(self, config):
        architectures = config.get("architectures") or []
        self.moe = ("MixtralForCausalLM" in architectures or config.get("model_type") == "mixtral"
                    or bool(config.get("num_local_experts")))
        self.vocab = config["vocab_size"]
        self.hidden = config["hidden_size"]
        self.intermediate = config["intermediate_size"]
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or self.hidden // self.heads
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.theta = config.get("rope_theta") or (1e6 if self.moe else 1e4)
        self.tied = bool(config.get("tie_word_embeddings", False))
        self.experts = config.get("num_local_experts", 0) if self.moe else 0
        self.top_k = config.get("num_experts_per_tok", 2) if self.moe else 0
        if self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} heads not a multiple of {self.kv_heads} KV heads")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} is odd")
        if config.get("rope_scaling"):
            raise ValueError("rope_scaling is not implemented by the reference")


def load_config(directory):
    with open(os.path.join(directory, "config.json")) as f:
        return json.load(f)


def load_checkpoint(directory):
    """{name: tensor} from model.safetensors, or from the shards listed in
    model.safetensors.index.json (every tensor of the weight map must be in
    the shard it names)."""
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        return safetensors_io.read(single)
    with open(os.path.join(directory, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(safetensors_io.read(os.path.join(directory, shard)))
    for name, shard in weight_map.items():
        if name not in tensors:
            raise ValueError(f"{name} missing from {shard}")
    return tensors


def rms_norm(x, weight, eps, wide=torch.float32):
    """LlamaRMSNorm / MixtralRMSNorm: normalise in fp32 (`wide`: the training
    reference's float64), cast back, scale."""
    dtype = x.dtype
    x = x.to(wide)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(seq, head_dim, theta, dtype, wide=torch.float32):
    """cos, sin [seq, head_dim] for positions 0..seq-1, computed in fp32
    (`wide`) and cast to the compute dtype (LlamaRotaryEmbedding, default
    rope type)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(wide) / head_dim))
    positions = torch.arange(seq, dtype=wide)
    freqs = torch.outer(positions, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, groups):
    """[b, kv, s, d] -> [b, kv * groups, s, d], each KV head `groups` times."""
    batch, kv_heads, seq, head_dim = x.shape
    if groups == 1:
        return x
    x = x[:, :, None, :, :].expand(batch, kv_heads, groups, seq, head_dim)
    return x.reshape(batch, kv_heads * groups, seq, head_dim)


def attention(x, w, prefix, c, cos, sin, wide=torch.float32):
    """Causal GQA self-attention (eager), no biases; the softmax in fp32
    (`wide`)."""
    batch, seq, _ = x.shape
    q = F.linear(x, w[prefix + "q_proj.weight"]).view(batch, seq, c.heads, c.head_dim)
    k = F.linear(x, w[prefix + "k_proj.weight"]).view(batch, seq, c.kv_heads, c.head_dim)
    v = F.linear(x, w[prefix + "v_proj.weight"]).view(batch, seq, c.kv_heads, c.head_dim)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = repeat_kv(k, c.heads // c.kv_heads)
    v = repeat_kv(v, c.heads // c.kv_heads)
    scores = torch.matmul(q, k.transpose(2, 3)) * (c.head_dim ** -0.5)
    mask = torch.full((seq, seq), torch.finfo(scores.dtype).min, dtype=scores.dtype).triu(1)
    probs = F.softmax(scores + mask, dim=-1, dtype=wide).to(q.dtype)
    out = torch.matmul(probs, v).transpose(1, 2).reshape(batch, seq, c.heads * c.head_dim)
    return F.linear(out, w[prefix + "o_proj.weight"])


def dense_mlp(x, w, prefix):
    """LlamaMLP: down(silu(gate(x)) * up(x))."""
    gate = F.linear(x, w[prefix + "gate_proj.weight"])
    up = F.linear(x, w[prefix + "up_proj.weight"])
    return F.linear(F.silu(gate) * up, w[prefix + "down_proj.weight"])


def expert_ffn(x, w, expert):
    """MixtralBlockSparseTop2MLP: w2(silu(w1 x) * w3 x)."""
    h = F.silu(F.linear(x, w[expert + "w1.weight"])) * F.linear(x, w[expert + "w3.weight"])
    return F.linear(h, w[expert + "w2.weight"])


def sparse_moe(x, w, prefix, c, wide=torch.float32):
    """MixtralSparseMoeBlock: router softmax in fp32 (`wide`), top-k, renormalise to
    sum 1, cast to the hidden dtype; each token gets the weighted sum of its
    experts, accumulated expert by expert in index order. Returns the output
    and the router logits [tokens, experts] (in the hidden dtype)."""
    batch, seq, hidden = x.shape
    tokens = x.reshape(-1, hidden)
    logits = F.linear(tokens, w[prefix + "gate.weight"])
    probs = F.softmax(logits, dim=-1, dtype=wide)
    weights, chosen = torch.topk(probs, c.top_k, dim=-1)
    weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
    out = torch.zeros_like(tokens)
    for e in range(c.experts):
        rows, slots = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        h = expert_ffn(tokens[rows], w, f"{prefix}experts.{e}.")
        out.index_add_(0, rows, (h * weights[rows, slots, None]).to(x.dtype))
    return out.view(batch, seq, hidden), logits


def forward(config, w, tokens, dtype=None):
    """tokens: int64 [batch, seq]. Returns (logits [batch, seq, vocab] fp32,
    [router logits [batch * seq, experts] of every layer] for Mixtral)."""
    c = config if isinstance(config, Config) else Config(config)
    if dtype is not None:
        w = {name: tensor.to(dtype) for name, tensor in w.items()}
    compute = w["model.embed_tokens.weight"].dtype
    cos, sin = rope_cos_sin(tokens.shape[1], c.head_dim, c.theta, compute)
    with torch.no_grad():
        h = F.embedding(tokens, w["model.embed_tokens.weight"])
        router_logits = []
        for i in range(c.layers):
            layer = f"model.layers.{i}."
            n = rms_norm(h, w[layer + "input_layernorm.weight"], c.eps)
            h = h + attention(n, w, layer + "self_attn.", c, cos, sin)
            n = rms_norm(h, w[layer + "post_attention_layernorm.weight"], c.eps)
            if c.moe:
                ffn, logits = sparse_moe(n, w, layer + "block_sparse_moe.", c)
                router_logits.append(logits)
            else:
                ffn = dense_mlp(n, w, layer + "mlp.")
            h = h + ffn
        h = rms_norm(h, w["model.norm.weight"], c.eps)
        head = w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"]
        return F.linear(h, head).float(), router_logits


def forward_batch(config, w, sequences, dtype=None):
    """Sequences of any lengths, each run on its own. Returns fp32 logits
    [batch, longest, vocab] and router logits [batch, longest, experts] per
    layer, both zero past the end of shorter sequences."""
    c = config if isinstance(config, Config) else Config(config)
    if dtype is not None:
        w = {name: tensor.to(dtype) for name, tensor in w.items()}
    longest = max(len(s) for s in sequences)
    logits = torch.zeros(len(sequences), longest, c.vocab)
    routers = [torch.zeros(len(sequences), longest, c.experts) for _ in range(c.layers if c.moe else 0)]
    for b, sequence in enumerate(sequences):
        out, router = forward(c, w, torch.tensor([sequence], dtype=torch.int64))
        logits[b, :len(sequence)] = out[0]
        for layer, r in zip(routers, router):
            layer[b, :len(sequence)] = r.float()
    return logits, routers


def read_tokens(path):
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("tokens")
    parser.add_argument("out")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="compute dtype (default: the weights' dtype)")
    parser.add_argument("--router-logits", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config(load_config(args.checkpoint))
    weights = load_checkpoint(args.checkpoint)
    sequences = read_tokens(args.tokens)
    for s in sequences:
        if any(t < 0 or t >= config.vocab for t in s):
            parser.error(f"{args.tokens}: token id outside [0, {config.vocab})")
    logits, routers = forward_batch(config, weights, sequences,
                                    DTYPES[args.dtype] if args.dtype else None)
    outputs = {"logits": logits}
    if args.router_logits:
        outputs.update({f"router_logits.{i}": r for i, r in enumerate(routers)})
    safetensors_io.write(args.out, outputs)
    print(f"logits {list(logits.shape)} -> {args.out}")


if __name__ == "__main__":
    main()
