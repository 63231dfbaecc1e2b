//===- Vjp.cpp - vector-Jacobian products of the moe ops ------------------===//
//
// Each differentiable op builds the gradients of its operands from those of
// its results. Ops whose Jacobian is expressible by forward ops use them
// (add, mul, the inverse rope); the others emit their `*_grad` op, whose
// kernel recomputes what it needs from the forward operands.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeOps.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

namespace {
/// The gradient of `value`, or zeros where no loss depends on it.
Value gradOrZeros(OpBuilder &b, Location loc, Value grad, Value value) {
  if (grad)
    return grad;
  return FillOp::create(b, loc, value.getType(), b.getF64FloatAttr(0.0));
}
} // namespace

LogicalResult EmbeddingOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(EmbeddingGradOp::create(
      b, getLoc(), getTable().getType(), resultGrads[0], getIds()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult RMSNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = RMSNormGradOp::create(b, getLoc(), getInput().getType(),
                                    getWeight().getType(), getInput(),
                                    getWeight(), resultGrads[0], getEpsilon());
  operandGrads.append({Value(grad.getInputGrad()), grad.getWeightGrad()});
  return success();
}

LogicalResult LinearOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(LinearGradInputOp::create(
      b, getLoc(), getInput().getType(), resultGrads[0], getWeight()));
  operandGrads.push_back(LinearGradWeightOp::create(
      b, getLoc(), getWeight().getType(), resultGrads[0], getInput()));
  return success();
}

LogicalResult RopeOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               SmallVectorImpl<Value> &operandGrads) {
  // A rotation's Jacobian is the rotation; its transpose rotates back.
  operandGrads.push_back(RopeOp::create(b, getLoc(), getType(), resultGrads[0],
                                        getPositions(), getNumHeads(),
                                        getTheta(), !getInverse()));
  if (getPositions())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult AttentionOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  double scale = getScale() ? getScale()->convertToDouble()
                            : 1.0 / std::sqrt(double(getHeadDim()));
  auto grad = AttentionGradOp::create(
      b, getLoc(), getQuery().getType(), getKey().getType(),
      getValue().getType(), getQuery(), getKey(), getValue(), resultGrads[0],
      getNumHeadsAttr(), getNumKvHeadsAttr(), getCausalAttr(),
      b.getF64FloatAttr(scale));
  operandGrads.append({Value(grad.getQueryGrad()), grad.getKeyGrad(),
                       grad.getValueGrad()});
  return success();
}

LogicalResult AddOp::buildVjp(OpBuilder &, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.append({resultGrads[0], resultGrads[0]});
  return success();
}

LogicalResult MulOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      MulOp::create(b, getLoc(), resultGrads[0], getRhs()).getResult());
  operandGrads.push_back(
      MulOp::create(b, getLoc(), resultGrads[0], getLhs()).getResult());
  return success();
}

LogicalResult SiluOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(SiluGradOp::create(b, getLoc(), getType(), getInput(),
                                            resultGrads[0]));
  return success();
}

LogicalResult SwigluOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  auto grad = SwigluGradOp::create(b, getLoc(), getType(), getType(),
                                   getGate(), getUp(), resultGrads[0]);
  operandGrads.append({Value(grad.getGateGrad()), grad.getUpGrad()});
  return success();
}

LogicalResult AddBiasOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(resultGrads[0]);
  operandGrads.push_back(BiasGradOp::create(b, getLoc(), getBias().getType(),
                                            resultGrads[0]));
  return success();
}

LogicalResult ClampOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(ClampGradOp::create(b, getLoc(), getType(), getInput(),
                                             resultGrads[0], getLimitAttr()));
  return success();
}

LogicalResult SigmoidGateOp::buildVjp(OpBuilder &b,
                                      ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  auto grad = SigmoidGateGradOp::create(b, getLoc(), getType(),
                                        getGate().getType(), getInput(),
                                        getGate(), resultGrads[0]);
  operandGrads.append({Value(grad.getInputGrad()), grad.getGateGrad()});
  return success();
}

LogicalResult RouterOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  Location loc = getLoc();
  Value weightsGrad = gradOrZeros(b, loc, resultGrads[1], getWeights());
  Value logitsGrad = RouterGradOp::create(
      b, loc, getLogits().getType(), getLogits(), getIndices(), weightsGrad,
      resultGrads[0], getTopK(), getNormalize());
  // The router's scores are a linear layer of the input.
  operandGrads.push_back(LinearGradInputOp::create(
      b, loc, getInput().getType(), logitsGrad, getWeight()));
  operandGrads.push_back(LinearGradWeightOp::create(
      b, loc, getWeight().getType(), logitsGrad, getInput()));
  return success();
}

LogicalResult DispatchOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                   SmallVectorImpl<Value> &operandGrads) {
  int64_t topK = llvm::cast<ShapedType>(getIndices().getType()).getShape().back();
  operandGrads.push_back(DispatchGradOp::create(
      b, getLoc(), getInput().getType(),
      gradOrZeros(b, getLoc(), resultGrads[0], getGrouped()), getSourceSlots(),
      topK));
  operandGrads.push_back(Value());
  return success();
}

namespace {
/// The expert MLPs' backward, reading `saved` hidden activations if any.
void expertMlpVjp(OpBuilder &b, Location loc, Value input, Value counts,
                  Value gate, Value up, Value down, Value resultGrad,
                  ValueRange saved, SmallVectorImpl<Value> &operandGrads) {
  auto grad = ExpertMLPGradOp::create(
      b, loc, input.getType(), gate.getType(), up.getType(), down.getType(),
      input, counts, gate, up, down, resultGrad, saved);
  operandGrads.append({Value(grad.getInputGrad()), Value(), grad.getGateGrad(),
                       grad.getUpGrad(), grad.getDownGrad()});
}
} // namespace

LogicalResult ExpertMLPOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  expertMlpVjp(b, getLoc(), getInput(), getCounts(), getGate(), getUp(),
               getDown(), resultGrads[0], {}, operandGrads);
  return success();
}

LogicalResult ExpertMLPTrainOp::buildVjp(OpBuilder &b,
                                         ArrayRef<Value> resultGrads,
                                         SmallVectorImpl<Value> &operandGrads) {
  // Only `result` feeds the loss; the hidden results exist for this.
  expertMlpVjp(b, getLoc(), getInput(), getCounts(), getGate(), getUp(),
               getDown(), resultGrads[0], {getGateHidden(), getUpHidden()},
               operandGrads);
  return success();
}

LogicalResult CombineOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = CombineGradOp::create(b, getLoc(), getInput().getType(),
                                    getWeights().getType(), getInput(),
                                    getWeights(), getSourceSlots(),
                                    resultGrads[0]);
  operandGrads.append(
      {Value(grad.getInputGrad()), grad.getWeightsGrad(), Value()});
  return success();
}

namespace {
/// The VJP of a fused block (kept hidden states in `saved`, or none).
template <typename FusedOp>
void fusedExpertsVjp(FusedOp op, OpBuilder &b, ArrayRef<Value> resultGrads,
                     ValueRange saved, int64_t expertParallel,
                     SmallVectorImpl<Value> &operandGrads) {
  Location loc = op.getLoc();
  auto grad = FusedExpertsGradOp::create(
      b, loc, op.getInput().getType(), op.getRouter().getType(),
      op.getGate().getType(), op.getUp().getType(), op.getDown().getType(),
      op.getInput(), op.getRouter(), op.getGate(), op.getUp(), op.getDown(),
      op.getLogits(), gradOrZeros(b, loc, resultGrads[0], op.getResult()),
      resultGrads[1], op.getLabels(), saved, op.getTopK(), op.getNormalize(),
      op.getActivation(), expertParallel, op.getIgnoreIndex());
  operandGrads.append({Value(grad.getInputGrad()), grad.getRouterGrad(),
                       grad.getGateGrad(), grad.getUpGrad(),
                       grad.getDownGrad()});
  if (op.getLabels())
    operandGrads.push_back(Value());
}
} // namespace

LogicalResult FusedExpertsOp::buildVjp(OpBuilder &b,
                                       ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  fusedExpertsVjp(*this, b, resultGrads, {}, getExpertParallel(),
                  operandGrads);
  return success();
}

LogicalResult
FusedExpertsTrainOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  // Only `result` and `logits` feed the losses; the hidden states exist for
  // this.
  fusedExpertsVjp(*this, b, resultGrads, {getGateHidden(), getUpHidden()},
                  /*expertParallel=*/1, operandGrads);
  return success();
}

LogicalResult CrossEntropyOp::buildVjp(OpBuilder &b,
                                       ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(CrossEntropyGradOp::create(
      b, getLoc(), getLogits().getType(), getLogits(), getLabels(),
      resultGrads[0], getIgnoreIndex()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult
LoadBalancingLossOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  auto grad = LoadBalancingLossGradOp::create(
      b, getLoc(), getRouterLogits().getTypes(), getLabels(),
      getRouterLogits(), resultGrads[0], getTopK(), getIgnoreIndex());
  operandGrads.push_back(Value()); // labels
  llvm::append_range(operandGrads, grad.getLogitsGrads());
  return success();
}

LogicalResult RouterZLossOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  auto grad = RouterZLossGradOp::create(
      b, getLoc(), getRouterLogits().getTypes(), getLabels(),
      getRouterLogits(), resultGrads[0], getIgnoreIndex());
  operandGrads.push_back(Value()); // labels
  llvm::append_range(operandGrads, grad.getLogitsGrads());
  return success();
}
