//===- ExampleDialect.cpp - an example dialect plugin ---------------------===//
//
// A complete dialect plugin for moe-opt, written as a user would write one:
// the `moe_example` dialect with one op, `moe_example.scaled_residual`, that
// moe-autodiff can differentiate (it implements moec's
// DifferentiableOpInterface), and the pass `moe-example-lower` that rewrites
// it into `moe` ops so that `moec compile` and the runtime need no plugin.
//
//   moe-opt model.mlir --load-dialect-plugin=MoeExampleDialectPlugin.so \
//     --load-pass-plugin=MoeExampleDialectPlugin.so \
//     --pass-pipeline='builtin.module(moe-autodiff,moe-example-lower)' \
//     -o train.mlir
//
// docs/plugins.md walks through it.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

#include "dialects/plugin-example/ExampleDialect.h.inc"
#define GET_OP_CLASSES
#include "dialects/plugin-example/ExampleOps.h.inc"

using namespace mlir;

#include "dialects/plugin-example/ExampleDialect.cpp.inc"
#define GET_OP_CLASSES
#include "dialects/plugin-example/ExampleOps.cpp.inc"

void moe_example::ExampleDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/plugin-example/ExampleOps.cpp.inc"
      >();
}

namespace {
/// `scale` broadcast to `type`: moe has no scalar-tensor product, so the
/// scale is a filled tensor multiplied elementwise.
Value scaled(OpBuilder &b, Location loc, Value value, double scale) {
  Value factor = moe::FillOp::create(b, loc, value.getType(),
                                     b.getF64FloatAttr(scale));
  return moe::MulOp::create(b, loc, value, factor);
}
} // namespace

// d(residual + s * update) = (dy, s * dy), built from moe ops so that the
// training step runs on the stock runtime.
LogicalResult moe_example::ScaledResidualOp::buildVjp(
    OpBuilder &b, ArrayRef<Value> resultGrads,
    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(resultGrads[0]);
  operandGrads.push_back(
      scaled(b, getLoc(), resultGrads[0], getScale().convertToDouble()));
  return success();
}

namespace {
struct LowerPass : PassWrapper<LowerPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LowerPass)

  StringRef getArgument() const final { return "moe-example-lower"; }
  StringRef getDescription() const final {
    return "Rewrite moe_example ops into moe ops";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<moe::MoeDialect>();
  }

  void runOnOperation() override {
    getOperation().walk([](moe_example::ScaledResidualOp op) {
      OpBuilder b(op);
      Value update = scaled(b, op.getLoc(), op.getUpdate(),
                            op.getScale().convertToDouble());
      op.replaceAllUsesWith(
          moe::AddOp::create(b, op.getLoc(), op.getResidual(), update)
              .getResult());
      op.erase();
    });
  }
};
} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "MoeExampleDialect", LLVM_VERSION_STRING,
          [](DialectRegistry *registry) {
            registry->insert<moe_example::ExampleDialect>();
          }};
}

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "MoeExampleDialect", LLVM_VERSION_STRING,
          [] { PassRegistration<LowerPass>(); }};
}
