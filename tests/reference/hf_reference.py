#!/usr/bin/python3
"""An independent PyTorch implementation of the forward pass of Hugging Face
LlamaForCausalLM, MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
Qwen2MoeForCausalLM, Qwen3MoeForCausalLM and OlmoeForCausalLM, written from
the semantics of the transformers modeling files (modeling_llama.py,
modeling_mixtral.py, modeling_qwen2.py, modeling_qwen3.py,
modeling_qwen2_moe.py, modeling_qwen3_moe.py, modeling_olmoe.py; eager
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
experts] (fp32, zero past the end) for each sparse layer of MoE checkpoints.
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


# architecture: (model_type, MoE, q/k/v biases, q/k norm, rms_norm_eps,
# rope_theta, experts, top-k, norm_topk_prob) as transformers' config and
# modeling files of each family define them. q/k norm: "head" normalises each
# head's features (Qwen3), "whole" the whole projection (OLMoE).
FAMILIES = {
    "LlamaForCausalLM": ("llama", False, False, None, 1e-6, 1e4, 0, 0, True),
    "MixtralForCausalLM": ("mixtral", True, False, None, 1e-5, 1e6, 8, 2, True),
    "Qwen2ForCausalLM": ("qwen2", False, True, None, 1e-6, 1e4, 0, 0, True),
    "Qwen3ForCausalLM": ("qwen3", False, False, "head", 1e-6, 1e4, 0, 0, True),
    "Qwen2MoeForCausalLM": ("qwen2_moe", True, True, None, 1e-6, 1e4, 60, 4, False),
    "Qwen3MoeForCausalLM": ("qwen3_moe", True, False, "head", 1e-6, 1e4, 128, 8, False),
    "OlmoeForCausalLM": ("olmoe", True, False, "whole", 1e-5, 1e4, 64, 8, False),
}


class Config:
    """The fields of a HF config.json that the forward pass uses."""

    def __init__(self, config):
        architectures = config.get("architectures") or []
        by_type = {family[0]: name for name, family in FAMILIES.items()}
        self.arch = architectures[0] if architectures else by_type.get(config.get("model_type"))
        if self.arch not in FAMILIES:
            raise ValueError(f"architecture {self.arch} is not implemented by the reference")
        (_, self.moe, self.qkv_bias, self.qk_norm, eps, theta, experts, top_k,
         norm_topk) = FAMILIES[self.arch]
        mixtral = self.arch == "MixtralForCausalLM"
        self.vocab = config["vocab_size"]
        self.hidden = config["hidden_size"]
        self.intermediate = config["intermediate_size"]
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or self.hidden // self.heads
        self.eps = config.get("rms_norm_eps", eps)
        self.theta = config.get("rope_theta") or theta
        self.tied = bool(config.get("tie_word_embeddings", False))
        self.clip_qkv = config.get("clip_qkv") if self.arch == "OlmoeForCausalLM" else None
        self.experts = config.get("num_local_experts" if mixtral else "num_experts",
                                  experts) if self.moe else 0
        self.top_k = config.get("num_experts_per_tok", top_k) if self.moe else 0
        self.norm_topk = norm_topk if mixtral else config.get("norm_topk_prob", norm_topk)
        qwen_moe = self.arch in ("Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM")
        self.expert_ffn = (config.get("moe_intermediate_size",
                                      1408 if self.arch == "Qwen2MoeForCausalLM" else 768)
                           if qwen_moe else self.intermediate)
        self.shared_ffn = (config.get("shared_expert_intermediate_size", 5632)
                           if self.arch == "Qwen2MoeForCausalLM" else 0)
        step = config.get("decoder_sparse_step", 1) if qwen_moe else 1
        dense = set(config.get("mlp_only_layers") or [])
        # Qwen2MoeDecoderLayer's rule; Mixtral and OLMoE: every layer (moec's
        # upcycled Mixtrals also list dense layers in mlp_only_layers).
        self.sparse = {i for i in range(self.layers)
                       if self.moe and i not in dense and (i + 1) % step == 0}
        self.moe_module = "block_sparse_moe" if mixtral else "mlp"
        self.expert_names = (("w1", "w3", "w2") if mixtral
                             else ("gate_proj", "up_proj", "down_proj"))
        if self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} heads not a multiple of {self.kv_heads} KV heads")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} is odd")
        if config.get("rope_scaling"):
            raise ValueError("rope_scaling is not implemented by the reference")

    def ffn_prefix(self, layer):
        """The FFN module of a layer, with its trailing dot."""
        module = self.moe_module if layer in self.sparse else "mlp"
        return f"model.layers.{layer}.{module}."


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
    """Causal GQA self-attention (eager), the softmax in fp32 (`wide`).
    Qwen2's q/k/v biases, Qwen3's per-head and OLMoE's whole-projection q/k
    RMSNorm before RoPE, OLMoE's clip_qkv after the norms."""
    batch, seq, _ = x.shape

    def project(name):
        bias = w[prefix + name + ".bias"] if c.qkv_bias else None
        return F.linear(x, w[prefix + name + ".weight"], bias)

    q, k, v = project("q_proj"), project("k_proj"), project("v_proj")
    if c.qk_norm == "whole":
        q = rms_norm(q, w[prefix + "q_norm.weight"], c.eps, wide)
        k = rms_norm(k, w[prefix + "k_norm.weight"], c.eps, wide)
    q = q.view(batch, seq, c.heads, c.head_dim)
    k = k.view(batch, seq, c.kv_heads, c.head_dim)
    v = v.view(batch, seq, c.kv_heads, c.head_dim)
    if c.qk_norm == "head":
        q = rms_norm(q, w[prefix + "q_norm.weight"], c.eps, wide)
        k = rms_norm(k, w[prefix + "k_norm.weight"], c.eps, wide)
    if c.clip_qkv is not None:
        q, k, v = (t.clamp(-c.clip_qkv, c.clip_qkv) for t in (q, k, v))
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


def expert_ffn(x, w, expert, names=("w1", "w3", "w2")):
    """One expert, gate/up/down named as its family names them (Mixtral:
    w2(silu(w1 x) * w3 x))."""
    gate, up, down = (w[expert + n + ".weight"] for n in names)
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def sparse_moe(x, w, prefix, c, wide=torch.float32):
    """MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock / OlmoeSparseMoeBlock:
    router softmax in fp32 (`wide`), top-k, renormalised to sum 1 when
    norm_topk_prob (always for Mixtral), cast to the hidden dtype; each token
    gets the weighted sum of its experts, accumulated expert by expert in
    index order; Qwen2-MoE adds its shared expert scaled by
    sigmoid(shared_expert_gate(x)). Returns the output and the router logits
    [tokens, experts] (in the hidden dtype)."""
    batch, seq, hidden = x.shape
    tokens = x.reshape(-1, hidden)
    logits = F.linear(tokens, w[prefix + "gate.weight"])
    probs = F.softmax(logits, dim=-1, dtype=wide)
    weights, chosen = torch.topk(probs, c.top_k, dim=-1)
    if c.norm_topk:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    weights = weights.to(x.dtype)
    out = torch.zeros_like(tokens)
    for e in range(c.experts):
        rows, slots = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        h = expert_ffn(tokens[rows], w, f"{prefix}experts.{e}.", c.expert_names)
        out.index_add_(0, rows, (h * weights[rows, slots, None]).to(x.dtype))
    if c.shared_ffn:
        shared = dense_mlp(tokens, w, prefix + "shared_expert.")
        gate = torch.sigmoid(F.linear(tokens, w[prefix + "shared_expert_gate.weight"]))
        out = out + gate * shared
    return out.view(batch, seq, hidden), logits


def decoder(c, w, tokens, cos, sin, wide=torch.float32):
    """The decoder stack and head on tokens [batch, seq]. Returns (logits in
    the compute dtype, [router logits [batch * seq, experts] per sparse
    layer])."""
    h = F.embedding(tokens, w["model.embed_tokens.weight"])
    router_logits = []
    for i in range(c.layers):
        layer = f"model.layers.{i}."
        n = rms_norm(h, w[layer + "input_layernorm.weight"], c.eps, wide)
        h = h + attention(n, w, layer + "self_attn.", c, cos, sin, wide)
        n = rms_norm(h, w[layer + "post_attention_layernorm.weight"], c.eps, wide)
        if i in c.sparse:
            ffn, logits = sparse_moe(n, w, c.ffn_prefix(i), c, wide)
            router_logits.append(logits)
        else:
            ffn = dense_mlp(n, w, c.ffn_prefix(i))
        h = h + ffn
    h = rms_norm(h, w["model.norm.weight"], c.eps, wide)
    head = w["model.embed_tokens.weight"] if c.tied else w["lm_head.weight"]
    return F.linear(h, head), router_logits


def forward(config, w, tokens, dtype=None):
    """tokens: int64 [batch, seq]. Returns (logits [batch, seq, vocab] fp32,
    [router logits [batch * seq, experts] of every sparse layer])."""
    c = config if isinstance(config, Config) else Config(config)
    if dtype is not None:
        w = {name: tensor.to(dtype) for name, tensor in w.items()}
    compute = w["model.embed_tokens.weight"].dtype
    cos, sin = rope_cos_sin(tokens.shape[1], c.head_dim, c.theta, compute)
    with torch.no_grad():
        logits, router_logits = decoder(c, w, tokens, cos, sin)
        return logits.float(), router_logits


def forward_batch(config, w, sequences, dtype=None):
    """Sequences of any lengths, each run on its own. Returns fp32 logits
    [batch, longest, vocab] and router logits [batch, longest, experts] per
    layer, both zero past the end of shorter sequences."""
    c = config if isinstance(config, Config) else Config(config)
    if dtype is not None:
        w = {name: tensor.to(dtype) for name, tensor in w.items()}
    longest = max(len(s) for s in sequences)
    logits = torch.zeros(len(sequences), longest, c.vocab)
    routers = [torch.zeros(len(sequences), longest, c.experts) for _ in c.sparse]
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
