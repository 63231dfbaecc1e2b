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

#endif // MOE_PASSES_TD
