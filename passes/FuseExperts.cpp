//===- FuseExperts.cpp - the moe-fuse-experts pass ------------------------===//
//
// Matches each MoE block from its end: a combine whose rows come from an
// expert_mlp over the rows of a dispatch, which groups the input of a router
// by that router's choice. The block's values in between (routing weights
// and indices, grouped rows, counts, slots, expert outputs) must feed only
// the chain, so that replacing it loses nothing.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFUSEEXPERTS
#include "passes/Passes.h.inc"

namespace {
/// The ops of one unfused MoE block.
struct Block {
  RouterOp router;
  DispatchOp dispatch;
  ExpertMLPOp experts;
  CombineOp combine;
};

/// The chain that ends in `combine`, or a reason why it is not one.
FailureOr<Block> matchBlock(CombineOp combine, std::string &why) {
  auto experts = combine.getInput().getDefiningOp<ExpertMLPOp>();
  auto dispatch =
      experts ? experts.getInput().getDefiningOp<DispatchOp>() : DispatchOp();
  auto router =
      dispatch ? dispatch.getIndices().getDefiningOp<RouterOp>() : RouterOp();
  if (!router) {
    why = "its rows do not come from router -> dispatch -> expert_mlp";
    return failure();
  }
  if (experts.getCounts() != dispatch.getCounts() ||
      combine.getSourceSlots() != dispatch.getSourceSlots() ||
      combine.getWeights() != router.getWeights() ||
      dispatch.getInput() != router.getInput()) {
    why = "its ops do not share one routing of one input";
    return failure();
  }
  int64_t routed =
      llvm::cast<RankedTensorType>(router.getWeight().getType()).getDimSize(0);
  if (dispatch.getNumExperts() != routed || experts.getNumExperts() != routed) {
    why = "its router, dispatch and experts disagree on the expert count";
    return failure();
  }
  for (Value inner : {router.getWeights(), router.getIndices(),
                      dispatch.getGrouped(), dispatch.getCounts(),
                      dispatch.getSourceSlots(), experts.getResult()})
    for (Operation *user : inner.getUsers())
      if (user != dispatch && user != experts && user != combine) {
        why = "an intermediate value also feeds " +
              user->getName().getStringRef().str();
        return failure();
      }
  // The fused op sits where the combine was, so the logits must not be read
  // before it.
  for (Operation *user : router.getLogits().getUsers())
    if (user->getBlock() == combine->getBlock() &&
        user->isBeforeInBlock(combine)) {
      why = "the router logits are read inside the block";
      return failure();
    }
  return Block{router, dispatch, experts, combine};
}

/// The block's name: the longest dotted prefix that the router's and the
/// combine's names share (`model.layers.0.block_sparse_moe` of `....gate`
/// and `....combine`), at the location of their file; else their fused
/// locations.
Location blockLocation(Block block) {
  auto router = llvm::dyn_cast<NameLoc>(block.router.getLoc());
  auto combine = llvm::dyn_cast<NameLoc>(block.combine.getLoc());
  if (router && combine) {
    StringRef a = router.getName().getValue(), b = combine.getName().getValue();
    size_t common = 0;
    while (common < a.size() && common < b.size() && a[common] == b[common])
      ++common;
    size_t dot = a.substr(0, common).rfind('.');
    if (dot != StringRef::npos && dot > 0)
      return NameLoc::get(StringAttr::get(router.getContext(), a.take_front(dot)),
                          router.getChildLoc());
  }
  return FusedLoc::get(block.router.getContext(),
                       {block.router.getLoc(), block.dispatch.getLoc(),
                        block.experts.getLoc(), block.combine.getLoc()});
}

struct FuseExperts : impl::MoeFuseExpertsBase<FuseExperts> {
  void runOnOperation() override {
    SmallVector<CombineOp> combines;
    getOperation().walk([&](CombineOp combine) { combines.push_back(combine); });
    for (CombineOp combine : combines) {
      std::string why;
      FailureOr<Block> block = matchBlock(combine, why);
      if (failed(block)) {
        combine.emitRemark() << "moe-fuse-experts: not fused: " << why;
        continue;
      }
      OpBuilder b(combine);
      RouterOp router = block->router;
      ExpertMLPOp experts = block->experts;
      auto fused = FusedExpertsOp::create(
          b, blockLocation(*block), combine.getType(),
          router.getLogits().getType(), router.getInput(), router.getWeight(),
          experts.getGate(), experts.getUp(), experts.getDown(),
          /*labels=*/Value(), router.getTopK(), router.getNormalize(),
          b.getStringAttr("swiglu"));
      combine.getResult().replaceAllUsesWith(fused.getResult());
      router.getLogits().replaceAllUsesWith(fused.getLogits());
      combine.erase();
      experts.erase();
      block->dispatch.erase();
      router.erase();
    }
  }
};
} // namespace
} // namespace mlir::moe
