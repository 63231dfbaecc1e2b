//===- MoeOps.cpp - moe operation verifiers -------------------------------===//
//
// One verifier per op, checking every rule on shapes, dtypes and attributes
// that can be decided statically. Messages name the operand and both sizes.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeOps.h"
#include "dialects/moe/ShapeChecks.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::moe;

namespace {
/// All but the last dimension: the token dimensions of an activation.
ArrayRef<int64_t> leadingDims(Type type) { return shapeOf(type).drop_back(); }

SmallVector<int64_t> withLast(ArrayRef<int64_t> leading, int64_t last) {
  SmallVector<int64_t> dims(leading);
  dims.push_back(last);
  return dims;
}
} // namespace

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

LogicalResult ParamOp::verify() {
  if (!getTensorType().hasStaticShape())
    return emitOpError() << "parameter type must have a static shape, got "
                         << getType();
  return success();
}

LogicalResult
ReadParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param = symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getNameAttr());
  if (!param)
    return emitOpError() << getNameAttr() << " does not name a moe.param";
  if (param.getType() != getType())
    return emitOpError() << "result type " << getType()
                         << " does not match the declared type "
                         << param.getType() << " of " << getNameAttr();
  return success();
}

//===----------------------------------------------------------------------===//
// Transformer layers
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  Type table = getTable().getType(), ids = getIds().getType(),
       result = getType();
  if (failed(checkRank(*this, "table", table, 2)) ||
      failed(checkMinRank(*this, "ids", ids, 1)) ||
      failed(checkSameElementType(*this, "result", result, "table", table)))
    return failure();
  return checkDims(*this, "result shape", shapeOf(result),
                   "the ids shape plus the table width",
                   withLast(shapeOf(ids), shapeOf(table)[1]));
}

LogicalResult RMSNormOp::verify() {
  Type input = getInput().getType(), weight = getWeight().getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkRank(*this, "weight", weight, 1)) ||
      failed(checkSameElementType(*this, "weight", weight, "input", input)))
    return failure();
  int64_t group = shapeOf(weight)[0], width = lastDim(input);
  if (!ShapedType::isDynamic(group) && !ShapedType::isDynamic(width) &&
      (group == 0 || width % group != 0))
    return emitOpError() << "weight size (" << group
                         << ") must divide the input width (" << width << ")";
  if (!(getEpsilon().convertToDouble() > 0))
    return emitOpError() << "epsilon must be > 0, got "
                         << getEpsilon().convertToDouble();
  return success();
}

LogicalResult LinearOp::verify() {
  Type input = getInput().getType(), weight = getWeight().getType(),
       result = getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkRank(*this, "weight", weight, 2)) ||
      failed(checkSameElementType(*this, "weight", weight, "input", input)) ||
      failed(checkSameElementType(*this, "result", result, "input", input)) ||
      failed(checkSize(*this, "weight dim 1 (in)", shapeOf(weight)[1],
                       "the input width", lastDim(input))))
    return failure();
  return checkDims(*this, "result shape", shapeOf(result),
                   "the input's leading dims plus weight dim 0 (out)",
                   withLast(leadingDims(input), shapeOf(weight)[0]));
}

/// Shared by rope and attention: activations are [B, S, heads * head_dim].
static LogicalResult checkHeads(Operation *op, StringRef what, Type type,
                                int64_t numHeads) {
  if (failed(checkRank(op, what, type, 3)) ||
      failed(checkAtLeast(op, "num_heads", numHeads, 1)))
    return failure();
  int64_t width = lastDim(type);
  if (!ShapedType::isDynamic(width) && width % numHeads != 0)
    return op->emitOpError() << what << " width " << width
                             << " is not divisible by num_heads " << numHeads;
  return success();
}

LogicalResult RopeOp::verify() {
  Type input = getInput().getType();
  if (failed(checkHeads(*this, "input", input, getNumHeads())))
    return failure();
  int64_t width = lastDim(input);
  if (!ShapedType::isDynamic(width) && (width / getNumHeads()) % 2 != 0)
    return emitOpError() << "head width " << width / getNumHeads()
                         << " must be even to rotate pairs";
  if (!(getTheta().convertToDouble() > 0))
    return emitOpError() << "theta must be > 0, got "
                         << getTheta().convertToDouble();
  if (Value positions = getPositions())
    return checkDims(*this, "positions shape", shapeOf(positions.getType()),
                     "the input's [batch, sequence]", leadingDims(input));
  return success();
}

int64_t AttentionOp::getHeadDim() {
  return lastDim(getQuery().getType()) / getNumHeads();
}

LogicalResult AttentionOp::verify() {
  Type query = getQuery().getType(), key = getKey().getType();
  if (failed(checkHeads(*this, "query", query, getNumHeads())) ||
      failed(checkHeads(*this, "key", key, getNumKvHeads())))
    return failure();
  if (getNumHeads() % getNumKvHeads() != 0)
    return emitOpError() << "num_kv_heads " << getNumKvHeads()
                         << " must divide num_heads " << getNumHeads();
  if (failed(checkSameElementType(*this, "key", key, "query", query)) ||
      failed(checkDims(*this, "key [batch, sequence]", leadingDims(key),
                       "the query's", leadingDims(query))))
    return failure();
  if (!ShapedType::isDynamic(lastDim(query)) &&
      failed(checkSize(*this, "key width", lastDim(key),
                       "num_kv_heads * head_dim",
                       getNumKvHeads() * getHeadDim())))
    return failure();
  if (std::optional<APFloat> scale = getScale();
      scale && !(scale->convertToDouble() > 0))
    return emitOpError() << "scale must be > 0, got "
                         << scale->convertToDouble();
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of Experts
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::verify() {
  Type input = getInput().getType(), weight = getWeight().getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkRank(*this, "weight", weight, 2)) ||
      failed(checkSameElementType(*this, "weight", weight, "input", input)) ||
      failed(checkSize(*this, "weight dim 1", shapeOf(weight)[1],
                       "the input width", lastDim(input))))
    return failure();
  int64_t numExperts = shapeOf(weight)[0];
  if (getTopK() < 1 || getTopK() > numExperts)
    return emitOpError() << "top_k " << getTopK()
                         << " must be in [1, number of experts = "
                         << numExperts << "]";
  ArrayRef<int64_t> tokens = leadingDims(input);
  if (failed(checkDims(*this, "logits shape", shapeOf(getLogits().getType()),
                       "the input's leading dims plus experts",
                       withLast(tokens, numExperts))))
    return failure();
  SmallVector<int64_t> topk = withLast(tokens, getTopK());
  if (failed(checkDims(*this, "weights shape", shapeOf(getWeights().getType()),
                       "the input's leading dims plus top_k", topk)))
    return failure();
  return checkDims(*this, "indices shape", shapeOf(getIndices().getType()),
                   "the input's leading dims plus top_k", topk);
}

LogicalResult DispatchOp::verify() {
  Type input = getInput().getType(), indices = getIndices().getType();
  if (failed(checkMinRank(*this, "input", input, 1)) ||
      failed(checkAtLeast(*this, "num_experts", getNumExperts(), 1)) ||
      failed(checkRank(*this, "indices", indices,
                       llvm::cast<RankedTensorType>(input).getRank())) ||
      failed(checkDims(*this, "indices leading dims", leadingDims(indices),
                       "the input's", leadingDims(input))))
    return failure();
  int64_t rows = ShapedType::kDynamic;
  if (int64_t tokens = productOrDynamic(leadingDims(input));
      !ShapedType::isDynamic(tokens) && !ShapedType::isDynamic(lastDim(indices)))
    rows = tokens * lastDim(indices);
  Type grouped = getGrouped().getType();
  if (failed(checkSameElementType(*this, "grouped", grouped, "input", input)) ||
      failed(checkDims(*this, "grouped shape", shapeOf(grouped),
                       "[tokens * top_k, input width]",
                       {rows, lastDim(input)})) ||
      failed(checkDims(*this, "counts shape", shapeOf(getCounts().getType()),
                       "[num_experts]", {getNumExperts()})))
    return failure();
  return checkDims(*this, "source_slots shape",
                   shapeOf(getSourceSlots().getType()), "[grouped rows]",
                   {shapeOf(grouped)[0]});
}

LogicalResult ExpertMLPOp::verify() {
  Type input = getInput().getType(), gate = getGate().getType(),
       up = getUp().getType(), down = getDown().getType();
  if (failed(checkRank(*this, "input", input, 2)) ||
      failed(checkRank(*this, "gate", gate, 3)))
    return failure();
  if (gate != up)
    return emitOpError() << "up type " << up << " must equal gate type "
                         << gate;
  ArrayRef<int64_t> g = shapeOf(gate);
  int64_t experts = g[0], width = g[1], model = g[2];
  if (failed(checkSameElementType(*this, "gate", gate, "input", input)) ||
      failed(checkSameElementType(*this, "down", down, "input", input)) ||
      failed(checkSize(*this, "gate dim 2", model, "the input width",
                       shapeOf(input)[1])) ||
      failed(checkDims(*this, "down shape", shapeOf(down),
                       "[experts, model width, expert width] from gate",
                       {experts, model, width})))
    return failure();
  return checkDims(*this, "counts shape", shapeOf(getCounts().getType()),
                   "[experts]", {experts});
}

LogicalResult CombineOp::verify() {
  Type input = getInput().getType(), weights = getWeights().getType(),
       slots = getSourceSlots().getType();
  if (failed(checkRank(*this, "input", input, 2)) ||
      failed(checkMinRank(*this, "weights", weights, 1)) ||
      failed(checkRank(*this, "source_slots", slots, 1)) ||
      failed(checkSameElementType(*this, "result", getType(), "input", input)) ||
      failed(checkSize(*this, "source_slots size", shapeOf(slots)[0],
                       "the input rows", shapeOf(input)[0])))
    return failure();
  int64_t tokens = productOrDynamic(leadingDims(weights));
  if (!ShapedType::isDynamic(tokens) && !ShapedType::isDynamic(lastDim(weights)) &&
      failed(checkSize(*this, "input rows", shapeOf(input)[0],
                       "tokens * top_k", tokens * lastDim(weights))))
    return failure();
  return checkDims(*this, "result shape", shapeOf(getType()),
                   "the weights' leading dims plus the input width",
                   withLast(leadingDims(weights), shapeOf(input)[1]));
}

namespace {
/// The shape rules of a fused MoE block, shared by the op and its backward.
LogicalResult verifyFusedBlock(Operation *op, Value input, Value router,
                               Value gate, Value up, Value down, Value logits,
                               int64_t topK, StringRef activation,
                               int64_t expertParallel) {
  Type x = input.getType(), r = router.getType(), g = gate.getType();
  if (failed(checkMinRank(op, "input", x, 1)) ||
      failed(checkRank(op, "router", r, 2)) ||
      failed(checkRank(op, "gate", g, 3)))
    return failure();
  if (g != up.getType())
    return op->emitOpError() << "up type " << up.getType()
                             << " must equal gate type " << g;
  if (activation != "swiglu")
    return op->emitOpError() << "activation '" << activation
                             << "' is not supported (expected \"swiglu\")";
  int64_t experts = shapeOf(r)[0];
  if (expertParallel < 1 ||
      (!ShapedType::isDynamic(experts) && experts % expertParallel != 0))
    return op->emitOpError() << "expert_parallel " << expertParallel
                             << " must divide the router's " << experts
                             << " experts";
  // Split over ranks, the expert weights are one rank's share.
  int64_t held =
      ShapedType::isDynamic(experts) ? experts : experts / expertParallel;
  ArrayRef<int64_t> gs = shapeOf(g);
  if (failed(checkSameElementType(op, "router", r, "input", x)) ||
      failed(checkSameElementType(op, "gate", g, "input", x)) ||
      failed(checkSameElementType(op, "down", down.getType(), "input", x)) ||
      failed(checkSize(op, "router dim 1", shapeOf(r)[1], "the input width",
                       lastDim(x))) ||
      failed(checkSize(op, "gate dim 0", gs[0],
                       expertParallel > 1
                           ? "the router's experts / expert_parallel"
                           : "the router's experts",
                       held)) ||
      failed(checkSize(op, "gate dim 2", gs[2], "the input width",
                       lastDim(x))) ||
      failed(checkDims(op, "down shape", shapeOf(down.getType()),
                       "[experts, model width, expert width] from gate",
                       {gs[0], gs[2], gs[1]})))
    return failure();
  if (!ShapedType::isDynamic(experts) && (topK < 1 || topK > experts))
    return op->emitOpError() << "top_k " << topK
                             << " must be in [1, number of experts = "
                             << experts << "]";
  return checkDims(op, "logits shape", shapeOf(logits.getType()),
                   "the input's leading dims plus experts",
                   withLast(leadingDims(x), experts));
}
} // namespace

/// A fused block's optional labels: one per token of its input.
static LogicalResult verifyBlockLabels(Operation *op, Value labels,
                                       Value input) {
  if (!labels)
    return success();
  return checkDims(op, "labels shape", shapeOf(labels.getType()),
                   "the input's leading dims", leadingDims(input.getType()));
}

LogicalResult FusedExpertsOp::verify() {
  if (failed(verifyFusedBlock(*this, getInput(), getRouter(), getGate(),
                              getUp(), getDown(), getLogits(), getTopK(),
                              getActivation(), getExpertParallel())))
    return failure();
  return verifyBlockLabels(*this, getLabels(), getInput());
}

/// A fused block's kept hidden pre-activations: [tokens * top_k, F].
static LogicalResult verifyBlockHidden(Operation *op, ValueRange hidden,
                                       Value input, Value gate, int64_t topK) {
  int64_t tokens = productOrDynamic(leadingDims(input.getType()));
  int64_t rows = ShapedType::isDynamic(tokens) ? tokens : tokens * topK;
  for (Value kept : hidden)
    if (failed(checkDims(op, "hidden shape", shapeOf(kept.getType()),
                         "[tokens * top_k, expert width]",
                         {rows, shapeOf(gate.getType())[1]})))
      return failure();
  return success();
}

LogicalResult FusedExpertsTrainOp::verify() {
  if (failed(verifyFusedBlock(*this, getInput(), getRouter(), getGate(),
                              getUp(), getDown(), getLogits(), getTopK(),
                              getActivation(), /*expertParallel=*/1)) ||
      failed(verifyBlockLabels(*this, getLabels(), getInput())))
    return failure();
  return verifyBlockHidden(*this, {getGateHidden(), getUpHidden()},
                           getInput(), getGate(), getTopK());
}

LogicalResult FusedExpertsGradOp::verify() {
  if (failed(verifyFusedBlock(*this, getInput(), getRouter(), getGate(),
                              getUp(), getDown(), getLogits(), getTopK(),
                              getActivation(), getExpertParallel())) ||
      failed(verifyBlockLabels(*this, getLabels(), getInput())))
    return failure();
  if (!getSaved().empty() && getSaved().size() != 2)
    return emitOpError() << "saved must be the gate and up hidden states, "
                            "got "
                         << getSaved().size() << " values";
  if (!getSaved().empty() && getExpertParallel() != 1)
    return emitOpError() << "saved hidden states need the experts on one "
                            "rank, not split over expert_parallel "
                         << getExpertParallel();
  if (failed(verifyBlockHidden(*this, getSaved(), getInput(), getGate(),
                               getTopK())))
    return failure();
  if (getLogitsGrad() && getLogitsGrad().getType() != getLogits().getType())
    return emitOpError() << "logits_grad type " << getLogitsGrad().getType()
                         << " must equal the logits type "
                         << getLogits().getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::verify() {
  Type logits = getLogits().getType();
  if (failed(checkMinRank(*this, "logits", logits, 1)))
    return failure();
  return checkDims(*this, "labels shape", shapeOf(getLabels().getType()),
                   "the logits' leading dims", leadingDims(logits));
}

/// The router losses' labels: one per row of every layer's logits.
static LogicalResult verifyLabelsPerRow(Operation *op, Value labels,
                                        ValueRange logits) {
  auto labelType = llvm::cast<ShapedType>(labels.getType());
  for (auto [i, layer] : llvm::enumerate(logits)) {
    auto type = llvm::cast<ShapedType>(layer.getType());
    if (!labelType.hasStaticShape() || !type.hasStaticShape())
      continue;
    int64_t rows = type.getNumElements() / std::max<int64_t>(1, lastDim(type));
    if (labelType.getNumElements() != rows)
      return op->emitOpError()
             << "has " << labelType.getNumElements()
             << " labels but router logits #" << i << " have " << rows
             << " rows; the losses need one label per token";
  }
  return success();
}

LogicalResult LoadBalancingLossOp::verify() {
  if (getRouterLogits().empty())
    return emitOpError() << "needs the router logits of at least one layer";
  int64_t numExperts = ShapedType::kDynamic;
  for (auto [i, logits] : llvm::enumerate(getRouterLogits())) {
    if (failed(checkMinRank(*this, "router logits", logits.getType(), 1)))
      return failure();
    int64_t experts = lastDim(logits.getType());
    if (i == 0)
      numExperts = experts;
    else if (failed(checkSize(*this, "experts of router logits #" +
                                         std::to_string(i),
                              experts, "the experts of #0", numExperts)))
      return failure();
  }
  if (ShapedType::isDynamic(numExperts))
    return emitOpError() << "router logits must have a static expert count";
  if (getTopK() < 1 || getTopK() > numExperts)
    return emitOpError() << "top_k " << getTopK()
                         << " must be in [1, number of experts = "
                         << numExperts << "]";
  return verifyLabelsPerRow(*this, getLabels(), getRouterLogits());
}


//===----------------------------------------------------------------------===//
// Initialisation programs
//===----------------------------------------------------------------------===//

LogicalResult RandomIndicesOp::verify() {
  if (failed(checkAtLeast(*this, "range", getRange(), 1)) ||
      failed(checkAtLeast(*this, "count", getCount(), 0)))
    return failure();
  if (getCount() > getRange())
    return emitOpError() << "count " << getCount()
                         << " exceeds the range " << getRange();
  return checkDims(*this, "result shape", shapeOf(getType()), "[count]",
                   {getCount()});
}

/// Shared by the ops that act on chosen rows (axis 0) or columns (axis 1).
static LogicalResult checkSlice(Operation *op, Value input, Value indices,
                                int64_t axis) {
  if (failed(checkRank(op, "input", input.getType(), 2)))
    return failure();
  if (axis != 0 && axis != 1)
    return op->emitOpError() << "axis must be 0 (rows) or 1 (columns), got "
                             << axis;
  int64_t chosen = shapeOf(indices.getType())[0];
  int64_t available = shapeOf(input.getType())[axis];
  if (!ShapedType::isDynamic(chosen) && !ShapedType::isDynamic(available) &&
      chosen > available)
    return op->emitOpError() << chosen << " indices exceed the " << available
                             << (axis == 0 ? " rows" : " columns")
                             << " of the input";
  return success();
}

LogicalResult SliceMomentsOp::verify() {
  return checkSlice(*this, getInput(), getIndices(), getAxis());
}

LogicalResult ResampleSliceOp::verify() {
  return checkSlice(*this, getInput(), getIndices(), getAxis());
}

LogicalResult AddNoiseSliceOp::verify() {
  if (!(getStd().convertToDouble() >= 0))
    return emitOpError() << "std must be >= 0, got "
                         << getStd().convertToDouble();
  return checkSlice(*this, getInput(), getIndices(), getAxis());
}

LogicalResult RandomTensorOp::verify() {
  if (getDistribution() != "normal" && getDistribution() != "centered_uniform")
    return emitOpError() << "distribution must be \"normal\" or "
                            "\"centered_uniform\", got \""
                         << getDistribution() << "\"";
  if (!(getStd().convertToDouble() >= 0))
    return emitOpError() << "std must be >= 0, got "
                         << getStd().convertToDouble();
  if (!getType().hasStaticShape())
    return emitOpError() << "result must have a static shape, got "
                         << getType();
  return success();
}

LogicalResult SliceOp::verify() {
  Type input = getInput().getType(), result = getType();
  if (failed(checkRank(*this, "input", input, 2)) ||
      failed(checkRank(*this, "result", result, 2)) ||
      failed(checkSameElementType(*this, "result", result, "input", input)))
    return failure();
  int64_t axis = getAxis(), offset = getOffset();
  if (axis != 0 && axis != 1)
    return emitOpError() << "axis must be 0 or 1, got " << axis;
  ArrayRef<int64_t> in = shapeOf(input), out = shapeOf(result);
  if (!ShapedType::isDynamic(in[axis]) && !ShapedType::isDynamic(out[axis]) &&
      (offset < 0 || offset > in[axis] - out[axis]))
    return emitOpError() << "offset " << offset << " and size " << out[axis]
                         << " do not fit in dimension " << axis << " of size "
                         << in[axis];
  return checkSize(*this, "result dimension " + std::to_string(1 - axis),
                   out[1 - axis], "the input's", in[1 - axis]);
}

LogicalResult StackOp::verify() {
  if (getInputs().empty())
    return emitOpError() << "needs at least one input";
  Type first = getInputs().front().getType();
  for (auto [i, input] : llvm::enumerate(getInputs()))
    if (input.getType() != first)
      return emitOpError() << "input #" << i << " has type " << input.getType()
                           << " but input #0 has " << first;
  int64_t inputs = int64_t(getInputs().size()), split = getExpertParallel();
  if (split < 1 || inputs % split != 0)
    return emitOpError() << "expert_parallel " << split
                         << " must divide the " << inputs << " inputs";
  SmallVector<int64_t> expected = {inputs / split};
  llvm::append_range(expected, shapeOf(first));
  if (failed(checkSameElementType(*this, "result", getType(), "inputs", first)))
    return failure();
  return checkDims(*this, "result shape", shapeOf(getType()),
                   "[inputs, input shape...]", expected);
}

LogicalResult
WriteParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param = symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getNameAttr());
  if (!param)
    return emitOpError() << getNameAttr() << " does not name a moe.param";
  if (param.getType() != getValue().getType())
    return emitOpError() << "value type " << getValue().getType()
                         << " does not match the declared type "
                         << param.getType() << " of " << getNameAttr();
  return success();
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

/// Per-layer logit gradients: one per router-logits operand, of its type.
static LogicalResult verifyPerLayerGrads(Operation *op, ValueRange logits,
                                         ValueRange grads) {
  if (logits.size() != grads.size())
    return op->emitOpError() << "has " << logits.size()
                             << " router-logits operands but " << grads.size()
                             << " gradients";
  for (auto [index, pair] : llvm::enumerate(llvm::zip(logits, grads)))
    if (std::get<0>(pair).getType() != std::get<1>(pair).getType())
      return op->emitOpError() << "gradient #" << index << " has type "
                               << std::get<1>(pair).getType() << ", expected "
                               << std::get<0>(pair).getType();
  return success();
}

LogicalResult ExpertMLPGradOp::verify() {
  if (getSaved().empty())
    return success();
  if (getSaved().size() != 2)
    return emitOpError() << "saves the gate and up hidden activations (2 "
                            "operands), got "
                         << getSaved().size();
  SmallVector<int64_t> hidden = {shapeOf(getInput().getType())[0],
                                 shapeOf(getGate().getType())[1]};
  for (Value saved : getSaved())
    if (failed(checkDims(*this, "saved hidden shape", shapeOf(saved.getType()),
                         "[rows, expert width]", hidden)))
      return failure();
  return success();
}

LogicalResult LoadBalancingLossGradOp::verify() {
  if (failed(verifyLabelsPerRow(*this, getLabels(), getRouterLogits())))
    return failure();
  return verifyPerLayerGrads(*this, getRouterLogits(), getLogitsGrads());
}

LogicalResult RouterZLossOp::verify() {
  return verifyLabelsPerRow(*this, getLabels(), getRouterLogits());
}

LogicalResult RouterZLossGradOp::verify() {
  if (failed(verifyLabelsPerRow(*this, getLabels(), getRouterLogits())))
    return failure();
  return verifyPerLayerGrads(*this, getRouterLogits(), getLogitsGrads());
}

#include "dialects/moe/MoeInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/moe/MoeOps.cpp.inc"
