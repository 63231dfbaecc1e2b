//===- SpecializeShapes.cpp - the moe-specialize-shapes pass --------------===//
//
// Fixes @forward's token ids to [batch, seq]; ShapePropagation.h does the
// rest.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/ShapePropagation.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOESPECIALIZESHAPES
#include "passes/Passes.h.inc"

namespace {
struct SpecializeShapesPass
    : impl::MoeSpecializeShapesBase<SpecializeShapesPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t batch = this->batch, seq = this->seq;
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "no function @forward to specialise";
      return signalPassFailure();
    }
    if (failed(checkTokenCount(module, batch, seq)))
      return signalPassFailure();
    if (forward.getNumArguments() != 1 ||
        !isTokenIds(forward.getArgument(0).getType())) {
      forward.emitError() << "@forward must take one argument, the token ids "
                             "tensor<?x?xi32>";
      return signalPassFailure();
    }
    setArgumentShape(forward.getArgument(0), {batch, seq});
    std::string where =
        "at batch " + std::to_string(batch) + ", seq " + std::to_string(seq);
    if (failed(propagateShapes(forward, where)))
      return signalPassFailure();
  }
};
} // namespace
} // namespace mlir::moe
