//===- SetRopeTheta.cpp - an example moe pass plugin ----------------------===//
//
// A complete pass plugin for moe-opt, written as a user would write one: it
// sets the rotary base `theta` of every moe.rope op (the first step of
// extending a model's context length by raising rope_theta).
//
//   moe-opt model.mlir --load-pass-plugin=MoeExamplePlugin.so \
//     --pass-pipeline='builtin.module(moe-example-set-rope-theta{theta=500000})'
//
// docs/plugins.md walks through it.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

using namespace mlir;

namespace {
struct SetRopeThetaPass
    : PassWrapper<SetRopeThetaPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SetRopeThetaPass)

  SetRopeThetaPass() = default;
  SetRopeThetaPass(const SetRopeThetaPass &other) : PassWrapper(other) {}

  StringRef getArgument() const final { return "moe-example-set-rope-theta"; }
  StringRef getDescription() const final {
    return "Set the rotary base theta of every moe.rope op";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<moe::MoeDialect>();
  }

  void runOnOperation() override {
    if (!(theta > 0)) {
      getOperation().emitError() << "theta must be > 0, got " << theta;
      return signalPassFailure();
    }
    Builder builder(&getContext());
    getOperation().walk([&](moe::RopeOp rope) {
      rope.setThetaAttr(builder.getF64FloatAttr(theta));
    });
  }

  Option<double> theta{*this, "theta", llvm::cl::desc("new rotary base"),
                       llvm::cl::init(10000.0)};
};
} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "MoeExamplePlugin", LLVM_VERSION_STRING,
          [] { PassRegistration<SetRopeThetaPass>(); }};
}
