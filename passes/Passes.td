//===- Passes.td - moe passes ------------------------------*- tablegen -*-===//

#ifndef MOE_PASSES_TD
#define MOE_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoePrintModelStats : Pass<"moe-print-stats", "::mlir::ModuleOp"> {
  let summary = "print parameter counts and FLOPs per token of a model";
  let description = [{
    Runs the model-statistics analysis over the module's `@forward` function
    and prints one `name: value` line per statistic to stdout: the total and
    per-token active parameter counts (an expert's weights count `top_k / E`
    towards the active ones) and the forward matmul FLOPs per token at
    sequence length `seq-len` (attention included, averaged over the causal
    context). The module is left unchanged.
  }];
  let options = [
    Option<"seqLen", "seq-len", "int64_t", /*default=*/"4096",
           "sequence length at which attention FLOPs are counted">,
  ];
}

def MoeSpecializeShapes : Pass<"moe-specialize-shapes", "::mlir::ModuleOp"> {
  let summary = "fix batch and sequence length, making every shape static";
  let description = [{
    Gives the token ids argument of `@forward` the static shape
    [batch, seq] and propagates static shapes through every op of the
    function (the grouped rows of a dropless MoE become batch * seq * top_k),
    updating the function type. Ops whose shapes were already static keep
    them; a static size that disagrees with the new one is an error.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", /*default=*/"1", "batch size">,
    Option<"seq", "seq", "int64_t", /*default=*/"128", "sequence length">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MoeUpcycle : Pass<"moe-upcycle", "::mlir::ModuleOp"> {
  let summary = "turn dense FFNs into Mixture-of-Experts blocks (Drop-Upcycling)";
  let description = [{
    Rewrites the SwiGLU FFN of each selected layer of `@forward` into a
    dropless MoE block (router, dispatch, expert MLPs, combine) with
    `experts` experts and `top-k` routing, named as the MoE family of the
    source names it (Llama: Mixtral, every layer; Qwen3: Qwen3-MoE, which
    lists dense layers in `mlp_only_layers`), and emits `@initialize`: the
    program that derives the new parameters from the dense model's FFN
    weights, which it takes as arguments (each tagged `moe.source` with its
    checkpoint name). Every other parameter keeps its name and is loaded from
    the dense checkpoint unchanged.

    Methods (Nakamura et al., ICLR 2025, and its baselines):
    - `drop`: each expert copies the dense matrices, then for a random subset
      of floor(ratio * d_ff) intermediate neurons (rows of gate/up, columns
      of down) the values are re-drawn from Normal(mean, std) of that slice
      of the dense matrix;
    - `naive`: every expert is an exact copy (Sparse Upcycling);
    - `noise`: the same index selection, Normal(0, 0.02) noise added;
    - `scratch`: the MoE structure only; no `@initialize`, every parameter
      is drawn from its initialiser.
    Fine-grained experts (`granularity` G): each expert's d_ff neurons are
    split into G consecutive slices of d_ff / G, giving E * G experts and
    top-(k * G) routing, with each router row repeated G times (Megatron-
    Core's layout); the drop applies inside each fine expert, and its down
    projection is scaled by G. A shared expert (`shared-expert`, Qwen2 sources)
    is an exact copy of the dense FFN behind a zero-initialised sigmoid gate
    (1/2), and the routed experts' down projections are halved. Both keep
    the dense model's output exactly at ratio 0 (docs/upcycling.md says why).
    Index sets are drawn per matrix (`per-matrix`, as the released code does)
    or once per expert for its three matrices (`shared`, as the paper's text
    says). Routers are drawn from centred uniform noise with std 0.02
    (`uniform`, the published runs) or Normal(0, 0.02) (`normal`). Random
    streams are keyed by `seed` and the parameter's name, so every expert is
    reproducible on its own.
  }];
  let options = [
    Option<"experts", "experts", "int64_t", /*default=*/"8", "experts per MoE layer">,
    Option<"topK", "top-k", "int64_t", /*default=*/"2", "experts per token">,
    Option<"layers", "layers", "std::string", /*default=*/"\"all\"",
           "all | every-other (layers 1, 3, 5, ...) | a comma-separated list">,
    Option<"method", "method", "std::string", /*default=*/"\"drop\"",
           "drop | naive | noise | scratch">,
    Option<"ratio", "ratio", "double", /*default=*/"0.5",
           "fraction of intermediate neurons re-initialised, in [0, 1]">,
    Option<"indexSets", "index-sets", "std::string", /*default=*/"\"per-matrix\"",
           "per-matrix | shared">,
    Option<"routerInit", "router-init", "std::string", /*default=*/"\"uniform\"",
           "uniform (centred, std 0.02) | normal (std 0.02)">,
    Option<"seed", "seed", "int64_t", /*default=*/"1234", "random seed">,
    Option<"auxLossCoef", "aux-loss-coef", "double", /*default=*/"0.02",
           "router_aux_loss_coef of the MoE config">,
    Option<"granularity", "granularity", "int64_t", /*default=*/"1",
           "split each expert's neurons into this many fine experts">,
    Option<"sharedExpert", "shared-expert", "bool", /*default=*/"false",
           "keep an un-dropped copy of the dense FFN as a shared expert "
           "(Qwen2-MoE)">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MoeFuseExperts : Pass<"moe-fuse-experts", "::mlir::ModuleOp"> {
  let summary = "fuse each MoE block's routing, experts and combine into one op";
  let description = [{
    Replaces every chain `moe.router` -> `moe.dispatch` -> `moe.expert_mlp`
    -> `moe.combine` of the module's functions by one `moe.fused_experts`,
    whose kernel routes, runs the experts and writes the weighted rows into
    the block's output without the grouped [tokens x top_k, D] copies in
    between, and whose backward keeps only the block's input and router
    logits. The fused op is named after the block (the common prefix of the
    router's and combine's names, e.g. `model.layers.0.block_sparse_moe`).

    A chain is fused only when its intermediate values feed nothing else and
    nothing reads the router logits before the combine; any other chain is
    left as it is, with a remark saying why. Run it before `moe-autodiff`:
    the training step then differentiates the fused op
    (`moe.fused_experts_grad`).
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MoeExpertParallel : Pass<"moe-expert-parallel", "::mlir::ModuleOp"> {
  let summary = "split each fused MoE block's experts over ranks";
  let description = [{
    Plans a run of `ranks` processes in which `expert-parallel` consecutive
    ranks split the experts of every `moe.fused_experts` (the rest of the
    ranks replicate those groups, data-parallel). Each stacked expert
    parameter (`gate`, `up`, `down`, named with a `*`) is declared as one
    rank's share, E / expert-parallel experts, and the fused op records the
    split in its `expert_parallel` attribute; its kernel then exchanges the
    routed rows with the ranks that own their experts at the block's two
    exchange points (after routing, before combining), with per-expert
    counts exchanged first, so no capacity factor is needed. Dense
    parameters, the router included, stay whole on every rank. The module
    records `moe.ranks` and `moe.expert_parallel` for the artifact.

    An upcycled model's `@initialize` stacks every expert of a split
    parameter; that `moe.stack` becomes one rank's share too, so each rank
    derives only its own experts, bit-identical to what one process derives
    for them (randomness is keyed by each expert's name). Generation
    programs (`@prefill`, `@decode_step`) are not split yet.

    `expert-parallel` defaults to `ranks` and must divide both `ranks` and
    every block's expert count. Run it after `moe-fuse-experts` and before
    `moe-autodiff`, which then derives the split backward. An unfused MoE
    chain, or an expert weight read by anything but a fused block, is an
    error.
  }];
  let options = [
    Option<"ranks", "ranks", "int64_t", /*default=*/"1",
           "processes the run will have">,
    Option<"expertParallel", "expert-parallel", "int64_t", /*default=*/"0",
           "ranks that split each block's experts (0: all of them)">,
  ];
}

def MoeGenerate : Pass<"moe-generate", "::mlir::ModuleOp"> {
  let summary = "turn @forward into @prefill and @decode_step over KV caches";
  let description = [{
    Replaces the shape-generic `@forward(ids)` by the two programs of text
    generation, which share one `moe.kv_cache` pair per attention layer
    ([batch, seq, kv width] each; `seq` is the context capacity):
    - `@prefill(ids, positions, last) -> logits`: `prefill` rows per
      sequence ([batch, prefill], default `seq`) at their `positions`
      (negative for padding); `last` [batch, 1] picks the row whose logits
      are returned ([batch, 1, vocab]), so the lm_head runs on one row per
      sequence;
    - `@decode_step(ids, positions) -> logits`: one row per sequence,
      [batch, 1] in and [batch, 1, vocab] out.
    In both, every `moe.rope` rotates at `positions`, and every causal
    `moe.attention` writes its keys and values into its layer's caches and
    becomes a `moe.cached_attention` over them. Run it instead of
    `moe-specialize-shapes`, before `moe-fuse-experts`.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", /*default=*/"1",
           "sequences generated together">,
    Option<"seq", "seq", "int64_t", /*default=*/"128",
           "context capacity: prompt plus generated tokens">,
    Option<"prefill", "prefill", "int64_t", /*default=*/"0",
           "prompt rows per prefill run (0: seq); longer prompts take "
           "several runs">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def MoeAutodiff : Pass<"moe-autodiff", "::mlir::ModuleOp"> {
  let summary = "build the training step: forward, losses and backward";
  let description = [{
    Clones the static-shaped `@forward` (run `moe-specialize-shapes` first)
    into `@train_step(ids, labels) -> (ce, aux, z, gradients...)`:
    - `ce`, the mean next-token cross-entropy of the logits against `labels`
      (positions labelled -100 are not predicted);
    - `aux`, the Mixtral load-balancing loss over the router logits of all
      layers together (0 for a dense model);
    - `z`, the router z-loss (computed when `z-loss-coef` > 0, else 0);
    - one gradient per parameter of `ce + aux-loss-coef * aux +
      z-loss-coef * z`, in parameter order, each result tagged
      `moe.gradient = @param`.
    The backward pass walks the forward ops in reverse and asks each for its
    vector-Jacobian product through `DifferentiableOpInterface`; gradients of
    values with several uses are summed. The expert MLPs keep their hidden
    pre-activations for the backward pass (`moe.expert_mlp_train`). With
    `recompute`, they are computed again in the backward pass instead, and
    so are the results of the cheap per-token ops (rms_norm, swiglu, silu,
    mul), so none of these stay alive from the forward pass to the backward
    one. Fused MoE blocks recompute their experts' hidden states unless
    `keep-expert-hidden` asks them to keep them
    (`moe.fused_experts_train`), which experts split over ranks cannot.
    In the training step, fused blocks take the labels, so that each line's
    unlabelled tail skips the experts (where every attention is causal).
  }];
  let options = [
    Option<"auxLossCoef", "aux-loss-coef", "double", /*default=*/"-1.0",
           "weight of the load-balancing loss; negative: the model config's "
           "router_aux_loss_coef (0.02 when absent)">,
    Option<"zLossCoef", "z-loss-coef", "double", /*default=*/"0.0",
           "weight of the router z-loss">,
    Option<"recompute", "recompute", "bool", /*default=*/"false",
           "recompute the experts' hidden activations and per-token ops in "
           "the backward pass instead of keeping them">,
    Option<"keepExpertHidden", "keep-expert-hidden", "bool",
           /*default=*/"false",
           "fused MoE blocks keep their experts' hidden pre-activations for "
           "the backward pass (moe.fused_experts_train) instead of "
           "recomputing them">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

#endif // MOE_PASSES_TD
