//===- ExpertParallel.cpp - the moe-expert-parallel pass ------------------===//
//
// The split is recorded, not spelled out as separate ops: each fused block
// keeps its one op (and its one kernel per direction) with an
// `expert_parallel` attribute, and its kernel cuts itself at the block's two
// exchange points. What the IR must say is what differs between one rank
// and many: the expert parameters each rank holds (their declared shape
// becomes one rank's share) and how many ranks the artifact needs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEEXPERTPARALLEL
#include "passes/Passes.h.inc"

namespace {
/// The moe.param a fused block's expert weight is read from.
FailureOr<ParamOp> expertParam(FusedExpertsOp block, Value weight,
                               SymbolTable &symbols) {
  auto read = weight.getDefiningOp<ReadParamOp>();
  ParamOp param = read ? symbols.lookup<ParamOp>(read.getName()) : ParamOp();
  if (!param || !param.getSymName().contains('*'))
    return block.emitError()
           << "moe-expert-parallel: an expert weight of this block is not a "
              "stacked expert parameter (a moe.param named with '*')";
  return param;
}

struct ExpertParallel : impl::MoeExpertParallelBase<ExpertParallel> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t ranks = this->ranks;
    int64_t split = expertParallel > 0 ? int64_t(expertParallel) : ranks;
    if (ranks < 1 || split < 1 || ranks % split != 0) {
      module.emitError() << "moe-expert-parallel: expert-parallel " << split
                         << " must divide ranks " << ranks;
      return signalPassFailure();
    }
    if (failed(checkSupported(module)))
      return signalPassFailure();

    SymbolTable symbols(module);
    llvm::SetVector<Operation *> splitParams;
    WalkResult walked = module.walk([&](FusedExpertsOp block) {
      int64_t experts = block.getNumExperts();
      if (experts % split != 0) {
        block.emitError() << "moe-expert-parallel: expert-parallel " << split
                          << " does not divide this block's " << experts
                          << " experts";
        return WalkResult::interrupt();
      }
      for (Value weight : {block.getGate(), block.getUp(), block.getDown()}) {
        FailureOr<ParamOp> param = expertParam(block, weight, symbols);
        if (failed(param))
          return WalkResult::interrupt();
        if (!splitParams.insert(*param))
          continue; // shared with another block: already split
        if (failed(shareParam(*param, experts / split)))
          return WalkResult::interrupt();
      }
      block.setExpertParallel(split);
      return WalkResult::advance();
    });
    if (walked.wasInterrupted())
      return signalPassFailure();
    if (failed(splitInitialization(module, splitParams, split)))
      return signalPassFailure();
    Builder b(module.getContext());
    module->setAttr("moe.ranks", b.getI64IntegerAttr(ranks));
    module->setAttr("moe.expert_parallel", b.getI64IntegerAttr(split));
  }

  /// What the split does not cover yet is refused, not half-planned.
  LogicalResult checkSupported(ModuleOp module) {
    WalkResult found = module.walk([&](Operation *op) {
      if (isa<ExpertMLPOp, ExpertMLPTrainOp>(op)) {
        op->emitError() << "moe-expert-parallel: this MoE block is not fused; "
                           "expert parallelism splits fused blocks (run "
                           "moe-fuse-experts first, and compile without "
                           "--no-fuse)";
        return WalkResult::interrupt();
      }
      if (isa<FusedExpertsGradOp>(op)) {
        op->emitError() << "moe-expert-parallel: run it before moe-autodiff";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (found.wasInterrupted())
      return failure();
    for (StringRef name : {"prefill", "decode_step"})
      if (auto fn = module.lookupSymbol<func::FuncOp>(name))
        return fn.emitError()
               << "moe-expert-parallel: @" << name
               << " cannot be split over ranks yet (expert parallelism covers "
                  "inference and training of @forward)";
    return success();
  }

  /// Drop-Upcycling's @initialize stacks every expert of a split parameter:
  /// the stack becomes one rank's share, so that each rank derives only its
  /// own experts (the runtime skips the rest).
  LogicalResult splitInitialization(ModuleOp module,
                                    const llvm::SetVector<Operation *> &params,
                                    int64_t split) {
    auto init = module.lookupSymbol<func::FuncOp>("initialize");
    if (!init)
      return success();
    WalkResult walked = init.walk([&](WriteParamOp write) {
      auto param = module.lookupSymbol<ParamOp>(write.getNameAttr());
      if (!param || !params.contains(param))
        return WalkResult::advance();
      auto stack = write.getValue().getDefiningOp<StackOp>();
      if (!stack || !stack->hasOneUse()) {
        write.emitError() << "moe-expert-parallel: @initialize writes expert "
                             "parameter "
                          << param.getSymName()
                          << " from something other than a stack of its "
                             "experts";
        return WalkResult::interrupt();
      }
      stack.setExpertParallel(split);
      stack.getResult().setType(param.getTensorType());
      return WalkResult::advance();
    });
    return failure(walked.wasInterrupted());
  }

  /// Declares `param` as one rank's `held` experts and retypes its reads.
  LogicalResult shareParam(ParamOp param, int64_t held) {
    RankedTensorType whole = param.getTensorType();
    SmallVector<int64_t> shape(whole.getShape());
    shape[0] = held;
    auto share = RankedTensorType::get(shape, whole.getElementType());
    param.setType(share);
    std::optional<SymbolTable::UseRange> uses =
        SymbolTable::getSymbolUses(param, getOperation());
    for (const SymbolTable::SymbolUse &use : *uses) {
      if (isa<WriteParamOp>(use.getUser()))
        continue; // @initialize's: splitInitialization
      auto read = dyn_cast<ReadParamOp>(use.getUser());
      if (!read)
        return use.getUser()->emitError()
               << "moe-expert-parallel: expert parameter " << param.getSymName()
               << " is used by an op that is not a read";
      for (Operation *user : read->getUsers())
        if (!isa<FusedExpertsOp>(user))
          return user->emitError()
                 << "moe-expert-parallel: expert parameter "
                 << param.getSymName()
                 << " is read by an op other than a fused MoE block";
      read.getResult().setType(share);
    }
    return success();
  }
};
} // namespace
} // namespace mlir::moe
