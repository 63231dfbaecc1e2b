#!/usr/bin/python3
"""Self-check of train_reference.py, each part against a second computation:

  forward    its autograd forward (f32) reproduces hf_reference.forward's
             logits and router logits (Mixtral, and tied-embedding Llama);
  losses     aux and z against loops over experts / explicit log-sum-exp,
             ce against -log softmax gathered by hand;
  fd         float64 autograd gradients of ce, aux, z and the total against
             central finite differences (eps 1e-6) at the largest-gradient
             entry of ten parameters of a tiny random Mixtral (both router
             gates, experts, attention, norms, embedding, lm_head); tokens
             are redrawn until every top-k choice wins by >= 1e-3 in router
             logits, so no perturbation flips a routing decision;
  optimiser  the hand-written clip + schedule + AdamW against
             torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW (decay /
             no-decay groups), and the schedule against hand-computed values;
  dense      a Llama checkpoint gives aux = z = 0 and a gradient everywhere;
  cli        the command line: tensor names, shapes, fp32, totals, and a
             one-line error naming a malformed batch file.

usage: test_train_reference_selfcheck.py      (exit status 0 ok, 1 failure)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_reference as ref  # noqa: E402
import make_fixtures  # noqa: E402
import safetensors_io  # noqa: E402
import train_reference as tr  # noqa: E402

MIXTRAL = dict(make_fixtures.MIXTRAL, vocab_size=37, hidden_size=24, intermediate_size=20,
               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               num_local_experts=4, num_experts_per_tok=2)
LLAMA = dict(make_fixtures.LLAMA, vocab_size=29, hidden_size=16, intermediate_size=24,
             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             tie_word_embeddings=True)
failures = []


def check(what, error, tolerance):
    ok = error <= tolerance  # False for NaN
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {error:.3g} (tolerance {tolerance:g})")
    if not ok:
        failures.append(what)


def expect(what, ok):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def margin(routers, top_k):
    ranked = torch.cat(routers).sort(dim=-1, descending=True).values
    return float((ranked[:, top_k - 1] - ranked[:, top_k]).min())


def model(config, name, batch, seq):
    """Random f32 weights (make_fixtures' scales) and a batch [batch, seq+1]
    whose routing wins by >= 1e-3 everywhere."""
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    w = make_fixtures.random_weights(config, g)
    c = ref.Config(config)
    for _ in range(200):
        tokens = torch.randint(0, c.vocab, (batch, seq + 1), generator=g)
        if not c.moe:
            return c, w, tokens
        with torch.no_grad():
            _, routers = tr.forward(c, {n: t.double() for n, t in w.items()}, tokens[:, :-1])
        if margin(routers, c.top_k) >= 1e-3:
            return c, w, tokens
    raise RuntimeError("no batch with decisive routing")


def check_forward(c, w, tokens, what):
    with torch.no_grad():
        logits, routers = tr.forward(c, w, tokens[:, :-1])
        want, want_routers = ref.forward(c, w, tokens[:, :-1])
        check(f"forward {what}: f32 logits vs hf_reference", rel(logits, want), 1e-6)
        for i, (r, q) in enumerate(zip(routers, want_routers)):
            check(f"forward {what}: f32 router logits {i} vs hf_reference", rel(r, q), 1e-6)
        logits64, _ = tr.forward(c, {n: t.double() for n, t in w.items()}, tokens[:, :-1])
        check(f"forward {what}: f64 vs f32 logits", rel(logits, logits64), 1e-5)


def check_losses(c, w, tokens):
    w = {n: t.double() for n, t in w.items()}
    with torch.no_grad():
        parts = tr.losses(c, w, tokens)
        logits, routers = tr.forward(c, w, tokens[:, :-1])
    logp = logits.log_softmax(-1).reshape(-1, c.vocab)
    ce = -logp[torch.arange(logp.shape[0]), tokens[:, 1:].reshape(-1)].mean()
    check("losses: ce vs -log softmax by hand", abs(float(parts["ce"] - ce)) / float(ce), 1e-12)
    r = torch.cat(routers)
    p = r.exp() / r.exp().sum(-1, keepdim=True)
    count = [0] * c.experts
    for row in p.tolist():  # count of (token, slot) assignments per expert
        for e in sorted(range(c.experts), key=lambda e: -row[e])[:c.top_k]:
            count[e] += 1
    t = r.shape[0]
    aux = c.experts * sum(count[e] / t * float(p[:, e].mean()) for e in range(c.experts))
    check(f"losses: aux vs count loop ({aux:.4f}; {c.top_k} when balanced)",
          abs(float(parts["aux"]) - aux) / aux, 1e-12)
    z = float((r.max(-1).values + (r - r.max(-1, keepdim=True).values).exp().sum(-1).log())
              .pow(2).mean())
    check("losses: z vs explicit log-sum-exp", abs(float(parts["z"]) - z) / z, 1e-12)


def check_padded_losses(c, w, tokens):
    """Padding (label -100) is left out of every loss: against loops over
    the labelled positions alone."""
    w = {n: t.double() for n, t in w.items()}
    labels = tokens[:, 1:].clone()
    labels[0, 5:] = -100
    labels[1, 2:] = -100
    with torch.no_grad():
        parts = tr.losses(c, w, (tokens, labels))
        logits, routers = tr.forward(c, w, tokens[:, :-1])
    real = (labels.reshape(-1) != -100).tolist()
    logp = logits.log_softmax(-1).reshape(-1, c.vocab)
    picked = [float(logp[i, y]) for i, y in enumerate(labels.reshape(-1).tolist()) if real[i]]
    ce = -sum(picked) / len(picked)
    check("padded losses: ce over the labelled positions", abs(float(parts["ce"]) - ce) / ce, 1e-12)
    rows = [row for layer in routers for i, row in enumerate(layer.tolist()) if real[i]]
    r = torch.tensor(rows, dtype=torch.float64)
    p = r.exp() / r.exp().sum(-1, keepdim=True)
    count = [0] * c.experts
    for row in p.tolist():
        for e in sorted(range(c.experts), key=lambda e: -row[e])[:c.top_k]:
            count[e] += 1
    aux = c.experts * sum(count[e] / len(rows) * float(p[:, e].mean()) for e in range(c.experts))
    check("padded losses: aux over the labelled positions",
          abs(float(parts["aux"]) - aux) / aux, 1e-12)
    z = float(torch.logsumexp(r, -1).pow(2).mean())
    check("padded losses: z over the labelled positions", abs(float(parts["z"]) - z) / z, 1e-12)


def check_fd(c, w, tokens):
    w = {n: t.double() for n, t in w.items()}
    coefs = {"total": (0.5, 0.1), "ce": None, "aux": None, "z": None}
    params = {n: t.clone().requires_grad_() for n, t in w.items()}
    parts = tr.losses(c, params, tokens)
    parts["total"] = tr.total_loss(parts, *coefs["total"])
    names = ["model.layers.0.block_sparse_moe.gate.weight",
             "model.layers.1.block_sparse_moe.gate.weight",
             "model.layers.0.block_sparse_moe.experts.1.w1.weight",
             "model.layers.1.block_sparse_moe.experts.2.w2.weight",
             "model.layers.1.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight",
             "model.layers.0.input_layernorm.weight", "model.embed_tokens.weight",
             "model.norm.weight", "lm_head.weight"]
    worst = {}
    for which in coefs:
        grads = torch.autograd.grad(parts[which], [params[n] for n in names], retain_graph=True,
                                    allow_unused=True)
        for name, grad in zip(names, grads):
            if grad is None:
                continue  # aux and z do not depend on lm_head, the final norm, the last experts
            index = int(grad.abs().argmax())
            values = []
            for sign in (1, -1):
                moved = dict(w)
                moved[name] = w[name].clone()
                moved[name].view(-1)[index] += sign * 1e-6
                with torch.no_grad():
                    p = tr.losses(c, moved, tokens)
                    p["total"] = tr.total_loss(p, *coefs["total"])
                values.append(float(p[which]))
            fd = (values[0] - values[1]) / 2e-6
            ad = float(grad.view(-1)[index])
            error = abs(fd - ad) / max(abs(ad), 1e-8)
            worst[which] = max(worst.get(which, 0.0), error)
            print(f"     fd {which:5s} {name}[{index}]: autograd {ad:+.9e}, fd {fd:+.9e}, "
                  f"rel {error:.2e}")
    for which, error in worst.items():
        check(f"fd: d {which} (worst rel. error over the parameters above)", error, 1e-5)


def check_optimiser(c, w, tokens):
    w = {n: t.double() for n, t in w.items()}
    steps, lr, min_lr, warmup, wd = 5, 3e-3, 1e-4, 2, 0.1
    want_lr = [1.5e-3, 3e-3, 3e-3, 1e-4 + 0.5 * 2.9e-3 * 1.5, 1e-4 + 0.5 * 2.9e-3 * 0.5]
    check("schedule: lr_s vs hand-computed values",
          max(abs(tr.lr_at(s, steps, lr, min_lr, warmup) / x - 1) for s, x in enumerate(want_lr)), 1e-12)
    for clip in (0.5, 0.0):
        out = tr.train(c, w, tokens, steps, lr, min_lr, warmup, wd, clip, 0.02, 0.001)
        params = {n: t.clone().requires_grad_() for n, t in w.items()}
        optimiser = torch.optim.AdamW(
            [{"params": [p for p in params.values() if p.ndim >= 2], "weight_decay": wd},
             {"params": [p for p in params.values() if p.ndim < 2], "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.95), eps=1e-8)
        norms = []
        for s in range(steps):
            optimiser.zero_grad()
            tr.total_loss(tr.losses(c, params, tokens), 0.02, 0.001).backward()
            if clip > 0:
                norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), clip)))
            for group in optimiser.param_groups:
                group["lr"] = tr.lr_at(s, steps, lr, min_lr, warmup)
            optimiser.step()
        error = max(rel(out[f"weights.{n}"], p.detach().float()) for n, p in params.items())
        moved = min(rel(out[f"weights.{n}"], t) for n, t in w.items())
        clipped = sum(n > clip for n in norms)
        check(f"optimiser (clip {clip}, {clipped} of {steps} steps clipped): weights vs "
              f"torch.optim.AdamW (worst rel., weights moved >= {moved:.1e})", error, 1e-6)
        if clip > 0:
            expect("optimiser: clipping was active in some steps", 0 < clipped)
            check("optimiser: grad_norm.<i> vs clip_grad_norm_'s",
                  max(abs(float(out[f"grad_norm.{s}"]) - x) / x for s, x in enumerate(norms)), 1e-6)
        # f64 throughout: compare tighter than the fp32 output allows
        w2 = {n: t.clone() for n, t in w.items()}
        state = {}
        for s in range(steps):
            _, grads = tr.loss_and_grads(c, w2, tokens, 0.02, 0.001)
            tr.clip_(grads, clip)
            tr.adamw_step_(w2, grads, state, s + 1, tr.lr_at(s, steps, lr, min_lr, warmup), wd)
        check(f"optimiser (clip {clip}): f64 weights vs torch.optim.AdamW",
              max(rel(w2[n], p.detach()) for n, p in params.items()), 1e-12)


def check_dense(c, w, tokens):
    out = tr.train(c, {n: t.double() for n, t in w.items()}, tokens, 1, aux_coef=0.02, z_coef=0.1)
    expect("dense: loss.aux == 0 and loss.z == 0",
           float(out["loss.aux"]) == 0 and float(out["loss.z"]) == 0)
    expect("dense: loss.total == loss.ce", float(out["loss.total"]) == float(out["loss.ce"]))
    expect("dense: every parameter has a nonzero gradient",
           all(float(out[f"grad.{n}"].abs().max()) > 0 for n in w))
    expect("dense: tied embeddings, no lm_head", "grad.lm_head.weight" not in out)


def check_cli(c, w, tokens, config, tmp):
    ckpt = os.path.join(tmp, "mixtral")
    os.makedirs(ckpt)
    ref_cfg = dict(config, router_aux_loss_coef=0.05)
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        json.dump(ref_cfg, f)
    safetensors_io.write(os.path.join(ckpt, "model.safetensors"), w)
    batch = os.path.join(tmp, "batch.txt")
    with open(batch, "w") as f:
        f.write("".join(" ".join(map(str, row)) + "\n" for row in tokens.tolist()))
    out_path = os.path.join(tmp, "out.safetensors")
    script = os.path.join(HERE, "train_reference.py")
    run = subprocess.run([sys.executable, script, ckpt, batch, out_path, "--steps", "3",
                          "--warmup-steps", "1", "--z-coef", "0.01"],
                         capture_output=True, text=True)
    expect(f"cli: runs ({run.stdout.strip() or run.stderr.strip()})", run.returncode == 0)
    if run.returncode:
        return
    out = safetensors_io.read(out_path)
    want = {f"loss.{k}" for k in ("ce", "aux", "z", "total")}
    want |= {f"{k}.{n}" for n in w for k in ("grad", "weights")}
    want |= {f"{k}.{s}" for s in range(3) for k in ("lr", "grad_norm", "step_loss")}
    expect("cli: exactly the expected tensor names", set(out) == want)
    expect("cli: all fp32", all(t.dtype == torch.float32 for t in out.values()))
    expect("cli: shapes (losses/lr/norms [], grads and weights as the parameters)",
           all(out[f"grad.{n}"].shape == t.shape == out[f"weights.{n}"].shape for n, t in w.items())
           and all(t.dim() == 0 for k, t in out.items() if not k.startswith(("grad.", "weights."))))
    total = float(out["loss.ce"]) + 0.05 * float(out["loss.aux"]) + 0.01 * float(out["loss.z"])
    check("cli: loss.total == ce + 0.05 (config) aux + 0.01 z",
          abs(float(out["loss.total"]) - total), 1e-6)
    expect("cli: step_loss.0 == loss.total, loss decreasing",
           float(out["step_loss.0"]) == float(out["loss.total"])
           and float(out["step_loss.2"]) < float(out["step_loss.0"]))
    _, grads = tr.loss_and_grads(c, {n: t.double() for n, t in w.items()}, tokens, 0.05, 0.01)
    check("cli: grads vs in-process", max(rel(out[f"grad.{n}"], g) for n, g in grads.items()), 1e-6)
    with open(batch, "a") as f:
        f.write("1\n")  # shorter lines are padded, but one token predicts nothing
    run = subprocess.run([sys.executable, script, ckpt, batch, out_path], capture_output=True, text=True)
    message = run.stderr.strip()
    expect(f"cli: one-token line -> exit 2, one line naming the file ({message})",
           run.returncode == 2 and batch in message and "\n" not in message)


def main():
    start = time.monotonic()
    torch.set_num_threads(1)
    c, w, tokens = model(MIXTRAL, "mixtral", 2, 8)
    check_forward(c, w, tokens, "mixtral")
    check_losses(c, w, tokens)
    check_padded_losses(c, w, tokens)
    check_fd(c, w, tokens)
    check_optimiser(c, w, tokens)
    cl, wl, tokensl = model(LLAMA, "llama", 2, 7)
    check_forward(cl, wl, tokensl, "llama (tied)")
    check_dense(cl, wl, tokensl)
    with tempfile.TemporaryDirectory() as tmp:
        check_cli(c, w, tokens, MIXTRAL, tmp)
    print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all ok'} "
          f"({time.monotonic() - start:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
