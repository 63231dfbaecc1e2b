"""An independent PyTorch implementation of the forward pass of Hugging Face
LlamaForCausalLM and MixtralForCausalLM, written from the semantics of the
transformers modeling files (it imports neither transformers nor moec).
Used to produce the reference logits the end-to-end tests compare with."""
import json
import os

import torch
import torch.nn.functional as F

import safetensors_io


def load_checkpoint(directory):
    """{name: tensor} from model.safetensors or the shards of its index."""
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        return safetensors_io.read(single)
    with open(os.path.join(directory, "model.safetensors.index.json")) as f:
        index = json.load(f)
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors.update(safetensors_io.read(os.path.join(directory, shard)))
    return tensors


def rms_norm(x, weight, eps):
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(seq, head_dim, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    positions = torch.arange(seq, dtype=torch.float32)
    freqs = torch.outer(positions, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def attention(x, w, prefix, config, cos, sin):
    batch, seq, _ = x.shape
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    q = F.linear(x, w[prefix + "q_proj.weight"]).view(batch, seq, heads, head_dim).transpose(1, 2)
    k = F.linear(x, w[prefix + "k_proj.weight"]).view(batch, seq, kv_heads, head_dim).transpose(1, 2)
    v = F.linear(x, w[prefix + "v_proj.weight"]).view(batch, seq, kv_heads, head_dim).transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    groups = heads // kv_heads
    k = k.repeat_interleave(groups, dim=1)
    v = v.repeat_interleave(groups, dim=1)
    scores = torch.matmul(q, k.transpose(2, 3)) / (head_dim ** 0.5)
    mask = torch.full((seq, seq), float("-inf")).triu(1)
    scores = scores + mask.to(scores.dtype)
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(probs, v).transpose(1, 2).reshape(batch, seq, heads * head_dim)
    return F.linear(out, w[prefix + "o_proj.weight"])


def dense_mlp(x, w, prefix):
    gate = F.linear(x, w[prefix + "gate_proj.weight"])
    up = F.linear(x, w[prefix + "up_proj.weight"])
    return F.linear(F.silu(gate) * up, w[prefix + "down_proj.weight"])


def sparse_moe(x, w, prefix, config):
    """Mixtral's block: softmax in fp32, top-k, renormalise, weighted experts."""
    batch, seq, hidden = x.shape
    tokens = x.view(-1, hidden)
    logits = F.linear(tokens, w[prefix + "gate.weight"])
    probs = F.softmax(logits, dim=1, dtype=torch.float)
    weights, chosen = torch.topk(probs, config["num_experts_per_tok"], dim=-1)
    weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
    out = torch.zeros_like(tokens)
    for e in range(config["num_local_experts"]):
        rows, slots = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        expert = f"{prefix}experts.{e}."
        h = tokens[rows]
        h = F.linear(F.silu(F.linear(h, w[expert + "w1.weight"])) * F.linear(h, w[expert + "w3.weight"]),
                     w[expert + "w2.weight"])
        out.index_add_(0, rows, h * weights[rows, slots, None])
    return out.view(batch, seq, hidden), logits


def forward(config, w, tokens, dtype=None):
    """Logits [batch, seq, vocab] (fp32) and the router logits of every layer."""
    if dtype is not None:
        w = {name: tensor.to(dtype) for name, tensor in w.items()}
    compute = w["model.embed_tokens.weight"].dtype
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    eps = config.get("rms_norm_eps", 1e-6)
    moe = "MixtralForCausalLM" in config.get("architectures", [])
    theta = config.get("rope_theta", 1e6 if moe else 1e4)
    cos, sin = rope_cos_sin(tokens.shape[1], head_dim, theta, compute)
    h = F.embedding(tokens, w["model.embed_tokens.weight"])
    router_logits = []
    for i in range(config["num_hidden_layers"]):
        layer = f"model.layers.{i}."
        n = rms_norm(h, w[layer + "input_layernorm.weight"], eps)
        h = h + attention(n, w, layer + "self_attn.", config, cos, sin)
        n = rms_norm(h, w[layer + "post_attention_layernorm.weight"], eps)
        if moe:
            ffn, logits = sparse_moe(n, w, layer + "block_sparse_moe.", config)
            router_logits.append(logits)
        else:
            ffn = dense_mlp(n, w, layer + "mlp.")
        h = h + ffn
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings") else w["lm_head.weight"]
    return F.linear(h, head).float(), router_logits
