//===- Autodiff.cpp - the moe-autodiff pass -------------------------------===//
//
// Reverse-mode differentiation of a straight-line function: the forward ops
// are visited last to first, each builds its vector-Jacobian product
// (DifferentiableOpInterface) from the gradients of its results, and a value
// used several times sums the gradients of its uses. The losses are seeded
// with their coefficients, so one backward pass yields the gradient of the
// weighted total.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEAUTODIFF
#include "passes/Passes.h.inc"

namespace {
RankedTensorType scalarType(MLIRContext *context) {
  return RankedTensorType::get({}, Float32Type::get(context));
}

Value fill(OpBuilder &b, Location loc, Type type, double value) {
  return FillOp::create(b, loc, type, b.getF64FloatAttr(value));
}

/// router_aux_loss_coef of the module's model config, else Mixtral's 0.02.
double configuredAuxLossCoef(ModuleOp module) {
  if (auto config = module->getAttrOfType<DictionaryAttr>("moe.hf_config"))
    if (auto coef = config.getAs<FloatAttr>("router_aux_loss_coef"))
      return coef.getValueAsDouble();
  return 0.02;
}

/// Ops cheap enough to run twice: per-token work whose inputs the backward
/// pass keeps anyway.
bool isRecomputable(Operation *op) {
  return isa<RMSNormOp, SwigluOp, SiluOp, MulOp, AddBiasOp, ClampOp>(op);
}

class Differentiator {
public:
  explicit Differentiator(OpBuilder &builder) : b(builder) {}

  /// Adds `grad` to the gradient of `value`.
  void accumulate(Value value, Value grad) {
    Value &slot = grads[value];
    slot = slot ? AddOp::create(b, grad.getLoc(), slot, grad).getResult() : grad;
  }

  /// Builds the backward pass of `forwardOps` (in program order) at the
  /// builder's insertion point.
  LogicalResult backward(ArrayRef<Operation *> forwardOps) {
    for (Operation *op : llvm::reverse(forwardOps)) {
      SmallVector<Value> resultGrads;
      bool any = false;
      for (Value result : op->getResults()) {
        resultGrads.push_back(grads.lookup(result));
        any |= bool(resultGrads.back());
      }
      // Parameters collect their gradients below; constants pass theirs on
      // to nothing.
      if (!any || isa<ReadParamOp>(op) || op->getNumOperands() == 0)
        continue;
      auto differentiable = dyn_cast<DifferentiableOpInterface>(op);
      if (!differentiable)
        return op->emitOpError()
               << "is not differentiable: a loss depends on its results";
      SmallVector<Value> operandGrads;
      if (failed(differentiable.buildVjp(b, resultGrads, operandGrads)))
        return failure();
      if (operandGrads.size() != op->getNumOperands())
        return op->emitOpError() << "built " << operandGrads.size()
                                 << " operand gradients for "
                                 << op->getNumOperands() << " operands";
      for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads))
        if (grad)
          accumulate(operand, grad);
    }
    return success();
  }

  /// The gradient of each parameter read in the function, summed over its
  /// reads, in first-read order.
  llvm::MapVector<StringAttr, Value> paramGrads(ArrayRef<Operation *> ops) {
    llvm::MapVector<StringAttr, Value> byParam;
    for (Operation *op : ops)
      if (auto read = dyn_cast<ReadParamOp>(op))
        if (Value grad = grads.lookup(read.getResult())) {
          Value &slot = byParam[read.getNameAttr().getAttr()];
          slot = slot ? AddOp::create(b, read.getLoc(), slot, grad).getResult()
                      : grad;
        }
    return byParam;
  }

  OpBuilder &b;
  llvm::DenseMap<Value, Value> grads;
};

/// Moves the backward pass's uses of cheap forward results onto fresh
/// copies made just before their first backward use.
void recomputeInBackward(Operation *firstBackwardOp) {
  llvm::DenseSet<Operation *> backward;
  for (Operation *op = firstBackwardOp; op; op = op->getNextNode())
    backward.insert(op);
  llvm::DenseMap<Operation *, Operation *> copies;
  for (Operation *user = firstBackwardOp; user; user = user->getNextNode()) {
    for (OpOperand &use : user->getOpOperands()) {
      Operation *def = use.get().getDefiningOp();
      if (!def || backward.contains(def) || !isRecomputable(def))
        continue;
      Operation *&copy = copies[def];
      if (!copy) {
        OpBuilder b(user);
        copy = b.clone(*def);
        backward.insert(copy);
      }
      use.set(copy->getResult(cast<OpResult>(use.get()).getResultNumber()));
    }
  }
}

/// Erases the side-effect-free ops whose results nothing reads: the
/// gradients built for values that lead to no parameter (e.g. constants).
void eraseDeadOps(Block &body) {
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
    if (op.use_empty() && !op.hasTrait<OpTrait::IsTerminator>() &&
        isMemoryEffectFree(&op))
      op.erase();
}

/// Swaps each expert_mlp for the variant that also returns its hidden
/// pre-activations, so the backward pass reads them instead of running two
/// of its GEMMs again.
void keepExpertActivations(Block &body) {
  for (ExpertMLPOp mlp : llvm::make_early_inc_range(body.getOps<ExpertMLPOp>())) {
    OpBuilder b(mlp);
    auto shape = llvm::cast<RankedTensorType>(mlp.getInput().getType());
    auto hidden = RankedTensorType::get(
        {shape.getDimSize(0),
         llvm::cast<RankedTensorType>(mlp.getGate().getType()).getDimSize(1)},
        shape.getElementType());
    auto keeping = ExpertMLPTrainOp::create(
        b, mlp.getLoc(), mlp.getType(), hidden, hidden, mlp.getInput(),
        mlp.getCounts(), mlp.getGate(), mlp.getUp(), mlp.getDown());
    mlp.getResult().replaceAllUsesWith(keeping.getResult());
    mlp.erase();
  }
}

/// Swaps each fused MoE block for the variant that also returns its experts'
/// hidden pre-activations (keep-expert-hidden). The split over ranks keeps
/// no such state: refused there.
LogicalResult keepFusedHidden(Block &body) {
  for (FusedExpertsOp block :
       llvm::make_early_inc_range(body.getOps<FusedExpertsOp>())) {
    if (block.getExpertParallel() != 1)
      return block.emitError()
             << "moe-autodiff: keep-expert-hidden is not supported for "
                "experts split over ranks (expert_parallel "
             << block.getExpertParallel() << ")";
    OpBuilder b(block);
    auto input = llvm::cast<RankedTensorType>(block.getInput().getType());
    int64_t rows = input.getNumElements() / input.getShape().back() *
                   block.getTopK();
    auto hidden = RankedTensorType::get(
        {rows, llvm::cast<RankedTensorType>(block.getGate().getType())
                   .getDimSize(1)},
        input.getElementType());
    auto keeping = FusedExpertsTrainOp::create(
        b, block.getLoc(), block.getResult().getType(),
        block.getLogits().getType(), hidden, hidden, block.getInput(),
        block.getRouter(), block.getGate(), block.getUp(), block.getDown(),
        block.getLabels(), block.getTopK(), block.getNormalize(),
        block.getActivation(), block.getIgnoreIndex());
    block.getResult().replaceAllUsesWith(keeping.getResult());
    block.getLogits().replaceAllUsesWith(keeping.getLogits());
    block.erase();
  }
  return success();
}

/// Gives each fused MoE block the step's labels, so that the tokens at the
/// end of a row that no loss counts (padding, the last position) skip the
/// experts. That is exact only when no counted position depends on them:
/// every attention must be causal, and ops of other dialects (a plugin's),
/// which may mix positions, keep the whole block.
void skipUnlabelledTokens(Block &body, Value labels, int64_t ignoreIndex) {
  Dialect *moe = labels.getContext()->getLoadedDialect<MoeDialect>();
  for (Operation &op : body.without_terminator()) {
    auto attention = dyn_cast<AttentionOp>(op);
    if (op.getDialect() != moe || (attention && !attention.getCausal()))
      return;
  }
  body.walk([&](FusedExpertsOp block) {
    block.getLabelsMutable().assign(labels);
    block.setIgnoreIndex(ignoreIndex);
  });
}

struct Autodiff : impl::MoeAutodiffBase<Autodiff> {
  using MoeAutodiffBase::MoeAutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "moe-autodiff: no function @forward to differentiate";
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step")) {
      module.emitError() << "moe-autodiff: the module already has @train_step";
      return signalPassFailure();
    }
    FunctionType type = forward.getFunctionType();
    if (type.getNumInputs() != 1 || type.getNumResults() != 1 ||
        !llvm::all_of(type.getInputs(), [](Type t) {
          return llvm::cast<ShapedType>(t).hasStaticShape();
        })) {
      forward.emitError() << "moe-autodiff: @forward must map static-shaped "
                             "token ids to logits (run moe-specialize-shapes "
                             "first)";
      return signalPassFailure();
    }
    if (failed(buildTrainStep(module, forward)))
      signalPassFailure();
  }

  LogicalResult buildTrainStep(ModuleOp module, func::FuncOp forward) {
    MLIRContext *context = module.getContext();
    func::FuncOp train = forward.clone();
    train.setName("train_step");
    module.getBody()->getOperations().insert(std::next(forward->getIterator()), train);
    Block &body = train.front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    Location loc = train.getLoc();
    Value labels = body.addArgument(train.getArgument(0).getType(), loc);

    OpBuilder b(ret);
    SmallVector<Value> routerLogits;
    int64_t topK = 0;
    for (Operation &op : body) {
      if (auto router = dyn_cast<RouterOp>(op)) {
        routerLogits.push_back(router.getLogits());
        topK = router.getTopK();
      } else if (auto fused = dyn_cast<FusedExpertsOp>(op)) {
        routerLogits.push_back(fused.getLogits());
        topK = fused.getTopK();
      }
    }
    Type scalar = scalarType(context);
    // Padding has no label; no loss counts it (the router losses as
    // transformers' attention mask leaves it out).
    constexpr int64_t kIgnoreIndex = -100;
    Value ce = CrossEntropyOp::create(b, loc, ret.getOperand(0), labels,
                                      kIgnoreIndex);
    Value aux = routerLogits.empty()
                    ? fill(b, loc, scalar, 0.0)
                    : LoadBalancingLossOp::create(b, loc, labels, routerLogits,
                                                  topK, kIgnoreIndex)
                          .getResult();
    bool zLoss = zLossCoef > 0 && !routerLogits.empty();
    Value z = zLoss ? RouterZLossOp::create(b, loc, labels, routerLogits,
                                            kIgnoreIndex)
                          .getResult()
                    : fill(b, loc, scalar, 0.0);

    skipUnlabelledTokens(body, labels, kIgnoreIndex);
    if (!recompute)
      keepExpertActivations(body);
    if (keepExpertHidden && failed(keepFusedHidden(body)))
      return failure();

    SmallVector<Operation *> forwardOps;
    for (Operation &op : body.without_terminator())
      forwardOps.push_back(&op);
    // Seeds: d total / d loss is the loss's coefficient.
    Value seed = fill(b, loc, scalar, 1.0);
    Operation *firstBackwardOp = seed.getDefiningOp();
    Differentiator diff(b);
    diff.grads[ce] = seed;
    double auxCoef = routerLogits.empty() ? 0.0
                     : auxLossCoef < 0    ? configuredAuxLossCoef(module)
                                          : auxLossCoef;
    // The runtime logs total = ce + aux_loss_coef * aux + z_loss_coef * z.
    train->setAttr("moe.aux_loss_coef", b.getF64FloatAttr(auxCoef));
    train->setAttr("moe.z_loss_coef", b.getF64FloatAttr(zLoss ? zLossCoef : 0.0));
    if (auxCoef != 0)
      diff.grads[aux] = fill(b, loc, scalar, auxCoef);
    if (zLoss)
      diff.grads[z] = fill(b, loc, scalar, zLossCoef);
    if (failed(diff.backward(forwardOps)))
      return failure();
    llvm::MapVector<StringAttr, Value> paramGrads = diff.paramGrads(forwardOps);

    SmallVector<Value> results = {ce, aux, z};
    SmallVector<Attribute> resultAttrs(3, b.getDictionaryAttr({}));
    for (ParamOp param : module.getOps<ParamOp>()) {
      Value grad = paramGrads.lookup(param.getSymNameAttr());
      if (!grad) // a parameter no loss depends on
        grad = fill(b, loc, param.getType(), 0.0);
      results.push_back(grad);
      resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(
          "moe.gradient", FlatSymbolRefAttr::get(param.getSymNameAttr()))));
    }
    func::ReturnOp::create(b, ret.getLoc(), results);
    ret.erase();
    train.setType(FunctionType::get(context, body.getArgumentTypes(),
                                    ValueRange(results).getTypes()));
    train.setAllResultAttrs(resultAttrs);
    if (recompute)
      recomputeInBackward(firstBackwardOp);
    eraseDeadOps(body);
    return success();
  }
};
} // namespace
} // namespace mlir::moe
