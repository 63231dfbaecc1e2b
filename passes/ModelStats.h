//===- ModelStats.h - parameter and FLOP counts of a model ------*- C++ -*-===//
//
// An analysis over the IR, not over the config it came from: whatever a pass
// did to the model (upcycling, dropping layers) shows in its statistics.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PASSES_MODELSTATS_H
#define MOE_PASSES_MODELSTATS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

struct ModelStats {
  int64_t totalParams = 0;
  /// Parameters a token touches: expert weights count top_k / E.
  int64_t activeParams = 0;
  /// Parameters held by expert MLPs (all experts).
  int64_t expertParams = 0;
  int64_t attentionLayers = 0;
  int64_t moeLayers = 0;
  int64_t numExperts = 0;
  int64_t topK = 0;
  int64_t seqLen = 0;
  /// Forward matmul FLOPs per token at `seqLen`, attention included.
  int64_t flopsPerToken = 0;
  /// The part of flopsPerToken spent in attention scores and values.
  int64_t attentionFlopsPerToken = 0;
};

/// Computes the statistics of the function `forward` of `module` at sequence
/// length `seqLen`. Fails with a diagnostic on the offending op when the
/// graph does not say what it costs (e.g. expert counts of unknown origin).
FailureOr<ModelStats> computeModelStats(ModuleOp module, int64_t seqLen,
                                        StringRef function = "forward");

/// Prints one `name: value` line per statistic.
void printModelStats(const ModelStats &stats, llvm::raw_ostream &os);

} // namespace mlir::moe

#endif // MOE_PASSES_MODELSTATS_H
