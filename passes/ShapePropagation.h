//===- ShapePropagation.h - static shapes from the arguments ----*- C++ -*-===//
//
// Shared by the passes that fix a function's token shapes
// (moe-specialize-shapes for @forward, moe-generate for its programs).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PASSES_SHAPEPROPAGATION_H
#define MOE_PASSES_SHAPEPROPAGATION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::moe {

/// Requires batch, seq >= 1 and batch * seq < 2^31 (the runtime counts
/// routed rows in 32 bits).
LogicalResult checkTokenCount(ModuleOp module, int64_t batch, int64_t seq);

/// Whether `type` is token ids: tensor<?x?xi32> or a static [B, S] one.
bool isTokenIds(Type type);

/// Gives `argument` the static `shape`, keeping its element type.
void setArgumentShape(BlockArgument argument, ArrayRef<int64_t> shape);

/// Makes every result of `function`'s moe ops static, from its (static)
/// argument shapes, and updates the function type. A static size that
/// disagrees with the propagated one is an error on the op, ending with
/// `where` (such as "at batch 2, seq 16").
LogicalResult propagateShapes(func::FuncOp function, StringRef where);

} // namespace mlir::moe

#endif // MOE_PASSES_SHAPEPROPAGATION_H
