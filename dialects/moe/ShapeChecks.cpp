//===- ShapeChecks.cpp - shape rules shared by the verifiers --------------===//

#include "dialects/moe/ShapeChecks.h"

#include "mlir/IR/TypeUtilities.h"

using namespace mlir;

namespace {
std::string sizeString(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}
} // namespace

std::string moe::shapeString(ArrayRef<int64_t> dims) {
  std::string text = "[";
  for (auto [i, d] : llvm::enumerate(dims))
    text += (i ? ", " : "") + sizeString(d);
  return text + "]";
}

bool moe::sizesMatch(int64_t a, int64_t b) {
  return a == b || ShapedType::isDynamic(a) || ShapedType::isDynamic(b);
}

int64_t moe::productOrDynamic(ArrayRef<int64_t> dims) {
  int64_t product = 1;
  for (int64_t d : dims) {
    if (ShapedType::isDynamic(d))
      return ShapedType::kDynamic;
    product *= d;
  }
  return product;
}

LogicalResult moe::checkRank(Operation *op, StringRef what, Type type,
                             int64_t rank) {
  int64_t actual = llvm::cast<RankedTensorType>(type).getRank();
  if (actual == rank)
    return success();
  return op->emitOpError() << what << " must have rank " << rank << ", got "
                           << type;
}

LogicalResult moe::checkMinRank(Operation *op, StringRef what, Type type,
                                int64_t rank) {
  int64_t actual = llvm::cast<RankedTensorType>(type).getRank();
  if (actual >= rank)
    return success();
  return op->emitOpError() << what << " must have rank >= " << rank << ", got "
                           << type;
}

LogicalResult moe::checkSize(Operation *op, StringRef what, int64_t actual,
                             StringRef expectedWhat, int64_t expected) {
  if (sizesMatch(actual, expected))
    return success();
  return op->emitOpError() << what << " is " << actual << " but must equal "
                           << expectedWhat << " (" << expected << ")";
}

LogicalResult moe::checkDims(Operation *op, StringRef what,
                             ArrayRef<int64_t> actual, StringRef expectedWhat,
                             ArrayRef<int64_t> expected) {
  bool match = actual.size() == expected.size() &&
               llvm::all_of(llvm::zip(actual, expected), [](auto pair) {
                 return sizesMatch(std::get<0>(pair), std::get<1>(pair));
               });
  if (match)
    return success();
  return op->emitOpError() << what << " " << shapeString(actual)
                           << " must equal " << expectedWhat << " "
                           << shapeString(expected);
}

LogicalResult moe::checkSameElementType(Operation *op, StringRef what,
                                        Type type, StringRef otherWhat,
                                        Type other) {
  Type a = getElementTypeOrSelf(type), b = getElementTypeOrSelf(other);
  if (a == b)
    return success();
  return op->emitOpError() << what << " element type " << a
                           << " must match " << otherWhat << " element type "
                           << b;
}

LogicalResult moe::checkAtLeast(Operation *op, StringRef what, int64_t value,
                                int64_t minimum) {
  if (value >= minimum)
    return success();
  return op->emitOpError() << what << " must be >= " << minimum << ", got "
                           << value;
}
