//===- ShapeChecks.h - shape rules shared by the verifiers ------*- C++ -*-===//
//
// Small checks that emit one clear diagnostic on the op when a shape rule is
// broken. Dynamic sizes match anything: rules are checked where sizes are
// known statically and at run time by the executor otherwise.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SHAPECHECKS_H
#define MOE_SHAPECHECKS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

namespace mlir::moe {

/// "[2, ?, 64]": dims as diagnostics print them, dynamic ones as "?".
std::string shapeString(ArrayRef<int64_t> dims);

/// Whether two sizes can be equal: equal, or either is dynamic.
bool sizesMatch(int64_t a, int64_t b);

/// Product of `dims`, or ShapedType::kDynamic when any is dynamic.
int64_t productOrDynamic(ArrayRef<int64_t> dims);

/// Requires `type` (the op's `what`) to have exactly `rank` dimensions.
LogicalResult checkRank(Operation *op, StringRef what, Type type,
                        int64_t rank);

/// Requires `type` (the op's `what`) to have at least `rank` dimensions.
LogicalResult checkMinRank(Operation *op, StringRef what, Type type,
                           int64_t rank);

/// Requires `actual` (described by `what`) to equal `expected` (described by
/// `expectedWhat`) unless either is dynamic.
LogicalResult checkSize(Operation *op, StringRef what, int64_t actual,
                        StringRef expectedWhat, int64_t expected);

/// Requires the dims of `what` to equal `expected` (described by
/// `expectedWhat`), dimension by dimension, ranks included.
LogicalResult checkDims(Operation *op, StringRef what, ArrayRef<int64_t> actual,
                        StringRef expectedWhat, ArrayRef<int64_t> expected);

/// Requires two values to share their element type.
LogicalResult checkSameElementType(Operation *op, StringRef what, Type type,
                                   StringRef otherWhat, Type other);

/// Requires an integer attribute to be at least `minimum`.
LogicalResult checkAtLeast(Operation *op, StringRef what, int64_t value,
                           int64_t minimum);

/// The shape of a ranked tensor type.
inline ArrayRef<int64_t> shapeOf(Type type) {
  return llvm::cast<RankedTensorType>(type).getShape();
}

/// The last dimension of a ranked tensor type: an activation's width.
inline int64_t lastDim(Type type) { return shapeOf(type).back(); }

} // namespace mlir::moe

#endif // MOE_SHAPECHECKS_H
