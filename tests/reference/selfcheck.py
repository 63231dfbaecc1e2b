#!/usr/bin/python3
"""Self-checks of the reference, each against a second, independently
written computation (float64, loops, other formulations):

  moe         the sparse Mixtral block (hf_reference.sparse_moe) against a
              dense loop that runs every expert on every token and masks by
              rank, on the real inputs of every layer of mixtral-top2of4 and
              mixtral-top1of3 and on random inputs (rel. error <= 1e-6);
  model       the whole forward pass with the dense MoE swapped in
              reproduces the fixtures' stored logits (<= 1e-6);
  attention   causal GQA attention with RoPE against per-head, per-position
              loops with RoPE as complex rotations (<= 1e-6);
  safetensors round trip of every dtype (bf16 bit-exact), shards, bad files;
  compare     compare_logits.py: a file against itself prints 0, shape
              mismatch exits 2.

usage: selfcheck.py [FIXTURES_DIR]   (default: generates them in a temp dir)
Exits non-zero on the first failure.
"""
import math
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_reference as ref  # noqa: E402
import make_fixtures  # noqa: E402
import safetensors_io  # noqa: E402

TOLERANCE = 1e-6


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def check(what, error, tolerance=TOLERANCE):
    ok = error <= tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {what}: rel_error {error:.3g} (tolerance {tolerance:g})")
    if not ok:
        sys.exit(1)


def expect(what, ok):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        sys.exit(1)


def dense_moe(x, w, prefix, c, wide=None):
    """Every expert on every token in float64; a token's weight for expert e
    is p_e / sum of its selected p if fewer than k experts have a larger
    probability (ties: lower index first, as in a stable descending sort)."""
    tokens = x.reshape(-1, x.shape[-1]).double()
    gate = w[prefix + "gate.weight"].double()
    out = torch.zeros_like(tokens)
    logits = torch.zeros(tokens.shape[0], c.experts, dtype=torch.float64)
    for t in range(tokens.shape[0]):
        for e in range(c.experts):
            logits[t, e] = sum(float(gate[e, i]) * float(tokens[t, i]) for i in range(tokens.shape[1]))
        exps = [math.exp(float(v) - float(logits[t].max())) for v in logits[t]]
        probs = [v / sum(exps) for v in exps]
        selected = [sum(probs[j] > probs[e] or (probs[j] == probs[e] and j < e)
                        for j in range(c.experts)) < c.top_k for e in range(c.experts)]
        total = sum(p for p, s in zip(probs, selected) if s)
        for e in range(c.experts):
            expert = f"{prefix}experts.{e}."
            w1, w2, w3 = (w[expert + n].double() for n in ("w1.weight", "w2.weight", "w3.weight"))
            a = w1 @ tokens[t]
            h = (a / (1.0 + torch.exp(-a))) * (w3 @ tokens[t])
            mask = 1.0 if selected[e] else 0.0
            out[t] += mask * (probs[e] / total) * (w2 @ h)
    return out.view(x.shape).to(x.dtype), logits.to(x.dtype)


def check_moe(fixtures):
    for case in ("mixtral-top2of4", "mixtral-top1of3"):
        directory = os.path.join(fixtures, case)
        c = ref.Config(ref.load_config(directory))
        w = ref.load_checkpoint(directory)
        sequences = ref.read_tokens(os.path.join(directory, "tokens.txt"))
        # Capture the real input of every MoE layer.
        inputs, sparse = [], ref.sparse_moe

        def capture(x, w, prefix, c, wide=torch.float32):
            inputs.append((x, prefix, "layer input"))
            return sparse(x, w, prefix, c, wide)
        ref.sparse_moe = capture
        try:
            ref.forward(c, w, torch.tensor(sequences[:1]))
        finally:
            ref.sparse_moe = sparse
        generator = torch.Generator().manual_seed(7)
        inputs.append((torch.randn(2, 5, c.hidden, generator=generator),
                       "model.layers.0.block_sparse_moe.", "random input"))
        for x, prefix, what in inputs:
            with torch.no_grad():
                out, logits = ref.sparse_moe(x, w, prefix, c)
            dense_out, dense_logits = dense_moe(x, w, prefix, c)
            check(f"moe {case} {prefix.rstrip('.')} ({what}) router logits", rel(logits, dense_logits))
            check(f"moe {case} {prefix.rstrip('.')} ({what}) output", rel(out, dense_out))
        # The whole model with the dense block reproduces the stored logits.
        stored = safetensors_io.read(os.path.join(directory, "logits.safetensors"))["logits"]
        ref.sparse_moe = dense_moe
        try:
            logits, _ = ref.forward_batch(c, w, sequences)
        finally:
            ref.sparse_moe = sparse
        check(f"model {case} with dense MoE vs stored logits", rel(logits, stored))


def loop_attention(x, w, prefix, c):
    """float64; RoPE as the rotation of the pairs (i, i + d/2) by
    position * theta^(-2i/d), written as complex multiplication."""
    x = x[0].double()
    seq = x.shape[0]
    q = (x @ w[prefix + "q_proj.weight"].double().T).view(seq, c.heads, c.head_dim)
    k = (x @ w[prefix + "k_proj.weight"].double().T).view(seq, c.kv_heads, c.head_dim)
    v = (x @ w[prefix + "v_proj.weight"].double().T).view(seq, c.kv_heads, c.head_dim)
    half = c.head_dim // 2
    angles = torch.tensor([[p * c.theta ** (-2.0 * i / c.head_dim) for i in range(half)]
                           for p in range(seq)], dtype=torch.float64)
    rotation = torch.polar(torch.ones_like(angles), angles)[:, None, :]

    def rope(t):
        z = torch.complex(t[..., :half], t[..., half:]) * rotation
        return torch.cat((z.real, z.imag), dim=-1)
    q, k = rope(q), rope(k)
    out = torch.zeros(seq, c.heads, c.head_dim, dtype=torch.float64)
    group = c.heads // c.kv_heads
    for h in range(c.heads):
        for i in range(seq):
            scores = torch.tensor([float(q[i, h] @ k[j, h // group]) / math.sqrt(c.head_dim)
                                   for j in range(i + 1)], dtype=torch.float64)
            probs = torch.softmax(scores, dim=0)
            out[i, h] = sum(probs[j] * v[j, h // group] for j in range(i + 1))
    return (out.reshape(seq, -1) @ w[prefix + "o_proj.weight"].double().T)[None]


def check_attention(fixtures):
    for case in ("llama-gqa", "llama-headdim", "mixtral-top1of3"):
        directory = os.path.join(fixtures, case)
        c = ref.Config(ref.load_config(directory))
        w = ref.load_checkpoint(directory)
        x = torch.randn(1, 9, c.hidden, generator=torch.Generator().manual_seed(3))
        cos, sin = ref.rope_cos_sin(9, c.head_dim, c.theta, torch.float32)
        with torch.no_grad():
            ours = ref.attention(x, w, "model.layers.1.self_attn.", c, cos, sin)
        check(f"attention {case}", rel(ours, loop_attention(x, w, "model.layers.1.self_attn.", c)))


def check_safetensors(fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.safetensors")
        generator = torch.Generator().manual_seed(1)
        tensors = {"f32": torch.randn(3, 5, generator=generator),
                   "bf16": torch.randn(7, generator=generator).to(torch.bfloat16),
                   "f16": torch.randn(2, 2, 2, generator=generator).half(),
                   "i32": torch.arange(-4, 5, dtype=torch.int32),
                   "i64": torch.tensor([[2 ** 40, -1]]),
                   "scalar": torch.tensor(1.5), "empty": torch.zeros(0, 4)}
        safetensors_io.write(path, tensors, {"format": "pt"})
        back = safetensors_io.read(path)
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
        same = (list(back) == list(tensors) and length % 8 == 0 and all(
            back[n].dtype == t.dtype and back[n].shape == t.shape and torch.equal(
                back[n].view(torch.int16) if t.dtype == torch.bfloat16 else back[n],
                t.view(torch.int16) if t.dtype == torch.bfloat16 else t)
            for n, t in tensors.items()))
        expect("safetensors round trip of F32 BF16 F16 I32 I64, scalar, empty", same)
        for bad in (b"", b"\x10\0\0\0\0\0\0\0{}", b"\x08\0\0\0\0\0\0\0not json",
                    b'\x40\0\0\0\0\0\0\0{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   '
                    b"\0\0\0\0"):
            with open(path, "wb") as f:
                f.write(bad)
            try:
                safetensors_io.read(path)
                expect(f"safetensors rejects {bad[:24]!r}", False)
            except ValueError:
                pass
        expect("safetensors rejects truncated, non-JSON and out-of-range files", True)
    sharded = os.path.join(fixtures, "llama-sharded")
    loaded = ref.load_checkpoint(sharded)
    expected = make_fixtures.shapes(ref.load_config(sharded))
    expect("sharded checkpoint loads every tensor",
           {n: tuple(t.shape) for n, t in loaded.items()} == expected)


def check_compare(fixtures):
    tool = os.path.join(HERE, "compare_logits.py")
    a = os.path.join(fixtures, "mixtral-top2of4", "logits.safetensors")
    b = os.path.join(fixtures, "llama-gqa", "logits.safetensors")
    same = subprocess.run([sys.executable, tool, a, a], capture_output=True, text=True)
    expect(f"compare_logits on a file and itself prints {same.stdout.strip()!r}",
           same.returncode == 0 and same.stdout == "rel_error: 0\n")
    shape = subprocess.run([sys.executable, tool, a, b], capture_output=True, text=True)
    expect(f"compare_logits shape mismatch exits 2: {shape.stderr.strip()}",
           shape.returncode == 2 and shape.stderr.count("\n") == 1)


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = sys.argv[1] if len(sys.argv) > 1 else tmp
        if len(sys.argv) == 1:
            subprocess.run([sys.executable, os.path.join(HERE, "make_fixtures.py"), tmp],
                           check=True, stdout=subprocess.DEVNULL)
        check_moe(fixtures)
        check_attention(fixtures)
        check_safetensors(fixtures)
        check_compare(fixtures)
    print("selfcheck: all passed")


if __name__ == "__main__":
    main()
