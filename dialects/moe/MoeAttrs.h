//===- MoeAttrs.h - moe attributes ------------------------------*- C++ -*-===//

#ifndef MOE_MOEATTRS_H
#define MOE_MOEATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/DialectImplementation.h"

namespace mlir {
// Initialiser attributes hold their numbers as APFloat (double semantics);
// MLIR's attribute parser generator has no FieldParser for it.
template <>
struct FieldParser<llvm::APFloat> {
  static FailureOr<llvm::APFloat> parse(AsmParser &parser) {
    double value;
    if (parser.parseFloat(value))
      return failure();
    return llvm::APFloat(value);
  }
};
} // namespace mlir

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoeAttrs.h.inc"

#endif // MOE_MOEATTRS_H
