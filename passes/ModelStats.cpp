//===- ModelStats.cpp - parameter and FLOP counts of a model --------------===//

#include "passes/ModelStats.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

namespace {
int64_t lastDim(Value value) {
  return llvm::cast<RankedTensorType>(value.getType()).getShape().back();
}

/// Experts per token of an expert MLP: the top-k of the dispatch that grouped
/// its rows.
FailureOr<int64_t> expertsPerToken(ExpertMLPOp mlp) {
  auto dispatch = mlp.getCounts().getDefiningOp<DispatchOp>();
  if (!dispatch)
    return mlp.emitOpError()
           << "counts do not come from moe.dispatch: cannot tell how many "
              "experts each token uses";
  int64_t k = lastDim(dispatch.getIndices());
  if (ShapedType::isDynamic(k))
    return dispatch.emitOpError() << "has a dynamic top-k";
  return k;
}

/// Forward FLOPs per token of one op (2 per multiply-add); 0 for ops whose
/// cost is not a matmul (norms, elementwise, routing permutations).
FailureOr<int64_t> flopsPerToken(Operation *op, int64_t seqLen) {
  return llvm::TypeSwitch<Operation *, FailureOr<int64_t>>(op)
      .Case([](LinearOp linear) -> FailureOr<int64_t> {
        auto shape = llvm::cast<RankedTensorType>(linear.getWeight().getType())
                         .getShape();
        return 2 * shape[0] * shape[1];
      })
      .Case([](RouterOp router) -> FailureOr<int64_t> {
        auto shape = llvm::cast<RankedTensorType>(router.getWeight().getType())
                         .getShape();
        return 2 * shape[0] * shape[1];
      })
      .Case([](ExpertMLPOp mlp) -> FailureOr<int64_t> {
        FailureOr<int64_t> k = expertsPerToken(mlp);
        if (failed(k))
          return failure();
        auto shape =
            llvm::cast<RankedTensorType>(mlp.getGate().getType()).getShape();
        return *k * 3 * 2 * shape[1] * shape[2];
      })
      .Case([&](AttentionOp attention) -> FailureOr<int64_t> {
        // Scores and weighted values: 2 matmuls over the context a token sees,
        // on average (S + 1) / 2 positions under a causal mask; the halving
        // cancels a factor 2 so that even S counts exactly.
        int64_t width = lastDim(attention.getQuery());
        if (attention.getCausal())
          return 2 * width * (seqLen + 1);
        return 2 * 2 * width * seqLen;
      })
      .Default([](Operation *) -> FailureOr<int64_t> { return 0; });
}
} // namespace

FailureOr<ModelStats> moe::computeModelStats(ModuleOp module, int64_t seqLen,
                                             StringRef function) {
  auto forward = module.lookupSymbol<func::FuncOp>(function);
  if (!forward)
    return module.emitError() << "no function @" << function
                              << " to compute statistics of";
  if (seqLen < 1 || seqLen > (int64_t(1) << 31))
    return module.emitError() << "seq-len must be in [1, 2^31], got "
                              << seqLen;

  ModelStats stats;
  stats.seqLen = seqLen;

  // How much of each parameter a token touches: the largest share over its
  // uses (a whole tensor for most ops, top_k / E of the experts' weights).
  llvm::DenseMap<StringAttr, double> activeShare;
  llvm::DenseMap<StringAttr, bool> expertWeight;
  WalkResult walk = forward.walk([&](Operation *op) -> WalkResult {
    if (auto mlp = dyn_cast<ExpertMLPOp>(op)) {
      ++stats.moeLayers;
      stats.numExperts = std::max(stats.numExperts, mlp.getNumExperts());
      FailureOr<int64_t> k = expertsPerToken(mlp);
      if (failed(k))
        return WalkResult::interrupt();
      stats.topK = std::max(stats.topK, *k);
    }
    if (isa<AttentionOp>(op))
      ++stats.attentionLayers;
    FailureOr<int64_t> flops = flopsPerToken(op, seqLen);
    if (failed(flops))
      return WalkResult::interrupt();
    stats.flopsPerToken += *flops;
    if (isa<AttentionOp>(op))
      stats.attentionFlopsPerToken += *flops;

    auto read = dyn_cast<ReadParamOp>(op);
    if (!read)
      return WalkResult::advance();
    for (OpOperand &use : read->getUses()) {
      double share = 1.0;
      auto mlp = dyn_cast<ExpertMLPOp>(use.getOwner());
      bool isExpertWeight = mlp && use.getOperandNumber() >= 2;
      if (isExpertWeight) {
        FailureOr<int64_t> k = expertsPerToken(mlp);
        if (failed(k)) // reported once, here, for the block
          return WalkResult::interrupt();
        share = double(*k) / mlp.getNumExperts();
        expertWeight[read.getNameAttr().getAttr()] = true;
      }
      double &known = activeShare[read.getNameAttr().getAttr()];
      known = std::max(known, share);
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();

  double active = 0;
  for (auto param : module.getOps<ParamOp>()) {
    int64_t count = param.getTensorType().getNumElements();
    stats.totalParams += count;
    if (expertWeight.lookup(param.getSymNameAttr()))
      stats.expertParams += count;
    active += count * activeShare.lookup(param.getSymNameAttr());
  }
  stats.activeParams = static_cast<int64_t>(std::llround(active));
  return stats;
}

void moe::printModelStats(const ModelStats &stats, llvm::raw_ostream &os) {
  os << "layers: " << stats.attentionLayers << "\n"
     << "moe_layers: " << stats.moeLayers << "\n"
     << "experts: " << stats.numExperts << "\n"
     << "experts_per_token: " << stats.topK << "\n"
     << "total_params: " << stats.totalParams << "\n"
     << "active_params: " << stats.activeParams << "\n"
     << "expert_params: " << stats.expertParams << "\n"
     << "seq_len: " << stats.seqLen << "\n"
     << "flops_per_token: " << stats.flopsPerToken << "\n"
     << "attention_flops_per_token: " << stats.attentionFlopsPerToken << "\n";
}
