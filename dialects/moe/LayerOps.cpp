//===- LayerOps.cpp - verifiers of the ops newer model families add -------===//
//
// q/k/v biases (Qwen2), clamped projections (OLMoE) and the gated shared
// expert (Qwen2-MoE), with their gradients.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeOps.h"
#include "dialects/moe/ShapeChecks.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

LogicalResult AddBiasOp::verify() {
  Type input = getInput().getType(), bias = getBias().getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkRank(*this, "bias", bias, 1)) ||
      failed(checkSameElementType(*this, "bias", bias, "input", input)))
    return failure();
  return checkSize(*this, "bias size", shapeOf(bias)[0], "the input width",
                   lastDim(input));
}

LogicalResult BiasGradOp::verify() {
  Type grad = getResultGrad().getType(), bias = getBiasGrad().getType();
  if (failed(checkMinRank(*this, "result gradient", grad, 1)) ||
      failed(checkRank(*this, "bias gradient", bias, 1)))
    return failure();
  return checkSize(*this, "bias gradient size", shapeOf(bias)[0],
                   "the result gradient's width", lastDim(grad));
}

LogicalResult ClampOp::verify() {
  double limit = getLimit().convertToDouble();
  if (!(limit > 0) || std::isinf(limit))
    return emitOpError() << "limit must be finite and > 0, got " << limit;
  return success();
}

LogicalResult SigmoidGateOp::verify() {
  Type input = getInput().getType(), gate = getGate().getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkSameElementType(*this, "gate", gate, "input", input)))
    return failure();
  SmallVector<int64_t> expected(shapeOf(input));
  expected.back() = 1;
  return checkDims(*this, "gate shape", shapeOf(gate),
                   "the input's leading dims and width 1", expected);
}
