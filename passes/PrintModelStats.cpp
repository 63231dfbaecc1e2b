//===- PrintModelStats.cpp - the moe-print-stats pass ---------------------===//

#include "passes/ModelStats.h"
#include "passes/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPRINTMODELSTATS
#include "passes/Passes.h.inc"

namespace {
struct PrintModelStatsPass
    : impl::MoePrintModelStatsBase<PrintModelStatsPass> {
  using Base::Base;

  void runOnOperation() override {
    FailureOr<ModelStats> stats = computeModelStats(getOperation(), seqLen);
    if (failed(stats))
      return signalPassFailure();
    printModelStats(*stats, llvm::outs());
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::moe
