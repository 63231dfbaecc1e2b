#!/usr/bin/python3
"""Independent PyTorch reference for moec's training step: loss, gradients
and N AdamW steps on one batch, for every architecture hf_reference.py
implements.
Imports neither transformers nor anything of moec; the model math is
hf_reference.py's (its helpers are reused; norms, softmaxes and RoPE tables
are computed here in the compute dtype, because hf_reference rounds them
through fp32 and float64 gradients need them exact).

usage: train_reference.py CHECKPOINT_DIR BATCH_FILE OUT.safetensors
           [--steps N] [--lr LR] [--min-lr LR] [--warmup-steps W]
           [--weight-decay WD] [--clip C] [--aux-coef A] [--z-coef Z]
           [--dtype f64|f32]

BATCH_FILE: B lines of whitespace-separated token ids, the longest S+1;
inputs = tokens[:, :-1], labels = tokens[:, 1:]. A shorter line is padded as
moe-run pads it: inputs with id 0 and labels -100 past its end, so padded
positions predict nothing and are left out of every loss (the router losses
through the attention mask, as transformers' load_balancing_loss_func).

Losses (router logits r of ALL layers concatenated: [L*B*S, E], p = softmax r,
t over the positions with a label):
  ce    mean next-token cross-entropy over those positions
  aux   transformers' load_balancing_loss_func (Mixtral; 0 for dense models)
        with that attention mask:
        E * sum_{k,e} mean_t(onehot(topk_k(p_t)) [e]) * mean_t(p_t[e]),
        the one-hot top-k assignment a constant (= top_k when balanced)
  z     mean_t logsumexp(r_t)^2
  total ce + A*aux + Z*z   (A default: config router_aux_loss_coef, else 0.02;
                            Z default 0)
Router: softmax -> top-k -> renormalise to sum 1; gradient flows through
the selected renormalised weights (indices are constants).

Optimiser, step s = 0..N-1, the same batch every step (hand-written below,
checked against torch.optim.AdamW + clip_grad_norm_ by the self-check):
  g = grad(total); n_s = ||g||_2 over all parameters (reported, pre-clip);
  if C > 0 and n_s + 1e-6 > C: g *= C / (n_s + 1e-6)   (clip_grad_norm_)
  lr_s = LR * (s+1) / W                                 if s < W
       = MIN + 0.5 (LR - MIN)(1 + cos(pi (s-W) / max(1, N-W)))  otherwise
  AdamW (betas 0.9, 0.95, eps 1e-8), t = s + 1:
    m = 0.9 m + 0.1 g;  v = 0.95 v + 0.05 g^2
    p *= 1 - lr_s * WD                    (only parameters with ndim >= 2)
    p -= lr_s / (1 - 0.9^t) * m / (sqrt(v) / sqrt(1 - 0.95^t) + eps)
  defaults LR 1e-3, MIN 1e-4, W 0, WD 0.1, C 1.0.

OUT (fp32; losses are 0-d tensors, shape []):
  loss.ce, loss.aux, loss.z, loss.total           at the checkpoint's weights
  grad.<param>                                    d loss.total / d param, same shape
  with --steps N > 0, for i = 0..N-1: lr.<i>, grad_norm.<i> (pre-clip),
  step_loss.<i> (loss.total before update i; step_loss.0 == loss.total), [] each;
  and weights.<param> after the N updates.
Malformed inputs exit with status 2 and a one-line message naming the file.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
import safetensors_io  # noqa: E402

DTYPES = {"f64": torch.float64, "f32": torch.float32}
BETAS, EPS, CLIP_EPS = (0.9, 0.95), 1e-8, 1e-6


def _wide(dtype):
    """fp32 for half types (HF's casts), else the dtype itself (f32, f64)."""
    return torch.promote_types(dtype, torch.float32)


def rope_cos_sin(seq, head_dim, theta, dtype):
    """hf_reference.rope_cos_sin, in float64 when computing in float64."""
    return ref.rope_cos_sin(seq, head_dim, theta, dtype, wide=_wide(dtype))


def forward(c, w, tokens):
    """hf_reference.decoder with autograd, in the weights' dtype, norms and
    softmaxes in at least fp32. Returns (logits [B, S, V], [router logits
    [B*S, E] per sparse layer])."""
    dtype = w["model.embed_tokens.weight"].dtype
    cos, sin = rope_cos_sin(tokens.shape[1], c.head_dim, c.theta, dtype)
    return ref.decoder(c, w, tokens, cos, sin, wide=_wide(dtype))


def load_balancing_loss(routers, experts, top_k, real):
    """transformers' load_balancing_loss_func with the attention mask `real`
    ([B*S], 1 for the positions with a label), repeated over the layers."""
    probs = F.softmax(torch.cat(routers, dim=0), dim=-1)
    keep = real.repeat(len(routers)).to(probs.dtype)        # [L*B*S]
    _, chosen = torch.topk(probs, top_k, dim=-1)
    mask = F.one_hot(chosen, experts).to(probs.dtype)       # [T, k, E], constant
    tokens_per_expert = (mask * keep[:, None, None]).sum(dim=0) / keep.sum()
    prob_per_expert = (probs * keep[:, None]).sum(dim=0) / keep.sum()
    return experts * torch.sum(tokens_per_expert * prob_per_expert.unsqueeze(0))


def losses(c, w, batch):
    """{ce, aux, z} (0-d, differentiable) for (token ids [B, S+1], labels
    [B, S]), or for token ids alone (every position labelled)."""
    tokens, labels = batch if isinstance(batch, tuple) else (batch, batch[:, 1:])
    logits, routers = forward(c, w, tokens[:, :-1])
    ce = F.cross_entropy(logits.reshape(-1, c.vocab), labels.reshape(-1), ignore_index=-100)
    zero = ce.new_zeros(())
    if not routers:
        return {"ce": ce, "aux": zero, "z": zero}
    real = labels.reshape(-1) != -100
    aux = load_balancing_loss(routers, c.experts, c.top_k, real)
    keep = real.repeat(len(routers)).to(ce.dtype)
    lse = torch.logsumexp(torch.cat(routers, dim=0), dim=-1)
    z = (lse.pow(2) * keep).sum() / keep.sum()
    return {"ce": ce, "aux": aux, "z": z}


def total_loss(parts, aux_coef, z_coef):
    return parts["ce"] + aux_coef * parts["aux"] + z_coef * parts["z"]


def loss_and_grads(c, w, batch, aux_coef, z_coef):
    """Returns ({ce, aux, z, total} detached, {name: grad})."""
    params = {n: t.detach().requires_grad_() for n, t in w.items()}
    parts = losses(c, params, batch)
    parts["total"] = total_loss(parts, aux_coef, z_coef)
    grads = torch.autograd.grad(parts["total"], list(params.values()), allow_unused=True)
    grads = {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(params.items(), grads)}
    return {k: v.detach() for k, v in parts.items()}, grads


def lr_at(step, steps, lr, min_lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def clip_(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_; returns the pre-clip global norm."""
    norm = torch.norm(torch.stack([g.norm(2) for g in grads.values()]), 2)
    if max_norm > 0:
        coef = max_norm / (float(norm) + CLIP_EPS)
        if coef < 1:
            for g in grads.values():
                g.mul_(coef)
    return float(norm)


def adamw_step_(w, grads, state, step, lr, weight_decay):
    """One torch.optim.AdamW step (step counted from 1), in place; decay only
    for ndim >= 2."""
    b1, b2 = BETAS
    for name, p in w.items():
        g = grads[name]
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        if p.ndim >= 2:
            p.mul_(1 - lr * weight_decay)
        denom = (v.sqrt() / math.sqrt(1 - b2 ** step)).add_(EPS)
        p.addcdiv_(m, denom, value=-lr / (1 - b1 ** step))


def train(c, w, batch, steps=0, lr=1e-3, min_lr=1e-4, warmup=0, weight_decay=0.1,
          clip=1.0, aux_coef=0.02, z_coef=0.0):
    """Returns the OUT dictionary (fp32 tensors); `w` is not modified."""
    w = {n: t.detach().clone() for n, t in w.items()}
    parts, grads = loss_and_grads(c, w, batch, aux_coef, z_coef)
    out = {f"loss.{k}": parts[k].float() for k in ("ce", "aux", "z", "total")}
    out.update({f"grad.{n}": g.float() for n, g in grads.items()})
    state = {}
    for s in range(steps):
        if s:
            parts, grads = loss_and_grads(c, w, batch, aux_coef, z_coef)
        out[f"step_loss.{s}"] = parts["total"].float()
        out[f"grad_norm.{s}"] = torch.tensor(clip_(grads, clip), dtype=torch.float32)
        rate = lr_at(s, steps, lr, min_lr, warmup)
        out[f"lr.{s}"] = torch.tensor(rate, dtype=torch.float32)
        adamw_step_(w, grads, state, s + 1, rate, weight_decay)
    if steps:
        out.update({f"weights.{n}": t.float() for n, t in w.items()})
    return out


def read_batch(path, vocab):
    """(token ids [B, S+1], labels [B, S]) as int64, shorter lines padded (see
    the module doc); ValueError naming the file for any malformed input."""
    try:
        with open(path) as f:
            lines = [(i, line.split()) for i, line in enumerate(f, 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read: {error}") from None
    if not lines:
        raise ValueError(f"{path}: no sequences")
    width = max(len(fields) for _, fields in lines)
    rows, labels = [], []
    for number, fields in lines:
        if len(fields) < 2:
            raise ValueError(f"{path}: line {number} has {len(fields)} token(s), need at least 2")
        try:
            row = [int(t) for t in fields]
        except ValueError:
            raise ValueError(f"{path}: line {number} holds a non-integer token") from None
        bad = [t for t in row if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"{path}: line {number}: token id {bad[0]} outside [0, {vocab})")
        # As moe-run pads: a line of n tokens gives n - 1 inputs and labels.
        rows.append(row[:-1] + [0] * (width - len(row) + 1))
        labels.append(row[1:] + [-100] * (width - len(row)))
    return (torch.tensor(rows, dtype=torch.int64), torch.tensor(labels, dtype=torch.int64))


def load(checkpoint, dtype):
    try:
        raw = ref.load_config(checkpoint)
        c = ref.Config(raw)
        w = {n: t.to(dtype) for n, t in ref.load_checkpoint(checkpoint).items()}
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{checkpoint}: bad checkpoint: {type(error).__name__}: {error}") from None
    return raw, c, w


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("batch")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=1.0, help="<= 0 disables clipping")
    parser.add_argument("--aux-coef", type=float, default=None,
                        help="default: config router_aux_loss_coef, else 0.02")
    parser.add_argument("--z-coef", type=float, default=0.0)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f64")
    args = parser.parse_args()
    if args.steps < 0 or args.warmup_steps < 0:
        parser.error("--steps and --warmup-steps must be >= 0")
    torch.set_num_threads(1)  # also fixes the summation order
    try:
        raw, c, w = load(args.checkpoint, DTYPES[args.dtype])
        batch = read_batch(args.batch, c.vocab)
    except ValueError as error:
        print(f"train_reference.py: {error}", file=sys.stderr)
        sys.exit(2)
    aux_coef = args.aux_coef
    if aux_coef is None:
        aux_coef = raw.get("router_aux_loss_coef", 0.02) if c.moe else 0.0
    out = train(c, w, batch, args.steps, args.lr, args.min_lr, args.warmup_steps,
                args.weight_decay, args.clip, aux_coef, args.z_coef)
    safetensors_io.write(args.out, out)
    print(f"batch {list(batch[0].shape)} loss.total {float(out['loss.total']):.6g} "
          f"(ce {float(out['loss.ce']):.6g}, aux {float(out['loss.aux']):.6g}, "
          f"z {float(out['loss.z']):.6g}), {args.steps} steps -> {args.out}")


if __name__ == "__main__":
    main()
