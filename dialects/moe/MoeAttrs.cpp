//===- MoeAttrs.cpp - moe attribute verifiers -----------------------------===//

#include "dialects/moe/MoeAttrs.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

LogicalResult
NormalInitAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       APFloat meanValue, APFloat stdValue) {
  double mean = meanValue.convertToDouble(), std = stdValue.convertToDouble();
  if (!std::isfinite(mean))
    return emitError() << "normal initialiser mean must be finite";
  if (!std::isfinite(std) || std < 0)
    return emitError() << "normal initialiser std must be finite and >= 0, got "
                       << std;
  return success();
}
