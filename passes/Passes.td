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

#endif // MOE_PASSES_TD
