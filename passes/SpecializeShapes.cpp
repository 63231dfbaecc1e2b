//===- SpecializeShapes.cpp - the moe-specialize-shapes pass --------------===//
//
// Shapes flow forward: once the token ids are [batch, seq], each op's result
// shapes follow from its operands by the op's own rule (the same relations
// its verifier checks), so one walk in program order makes them all static.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOESPECIALIZESHAPES
#include "passes/Passes.h.inc"

namespace {
ArrayRef<int64_t> shapeOf(Value value) {
  return llvm::cast<RankedTensorType>(value.getType()).getShape();
}

RankedTensorType withShape(Type type, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape,
                               llvm::cast<RankedTensorType>(type).getElementType());
}

SmallVector<int64_t> leadingPlus(Value value, int64_t last) {
  SmallVector<int64_t> shape(shapeOf(value).drop_back());
  shape.push_back(last);
  return shape;
}

/// The static result shapes of `op` given its (static) operand shapes.
SmallVector<SmallVector<int64_t>> resultShapes(Operation *op) {
  using Shapes = SmallVector<SmallVector<int64_t>>;
  return llvm::TypeSwitch<Operation *, Shapes>(op)
      .Case([](EmbeddingOp e) {
        SmallVector<int64_t> shape(shapeOf(e.getIds()));
        shape.push_back(shapeOf(e.getTable())[1]);
        return Shapes{shape};
      })
      .Case([](LinearOp l) {
        return Shapes{leadingPlus(l.getInput(), shapeOf(l.getWeight())[0])};
      })
      .Case([](RouterOp r) {
        int64_t experts = shapeOf(r.getWeight())[0];
        return Shapes{leadingPlus(r.getInput(), experts),
                      leadingPlus(r.getInput(), r.getTopK()),
                      leadingPlus(r.getInput(), r.getTopK())};
      })
      .Case([](DispatchOp d) {
        SmallVector<int64_t> tokens(shapeOf(d.getInput()).drop_back());
        int64_t rows = shapeOf(d.getIndices()).back();
        for (int64_t t : tokens)
          rows *= t;
        return Shapes{{rows, shapeOf(d.getInput()).back()},
                      {d.getNumExperts()},
                      {rows}};
      })
      .Case([](FusedExpertsOp f) {
        return Shapes{SmallVector<int64_t>(shapeOf(f.getInput())),
                      leadingPlus(f.getInput(), f.getNumExperts())};
      })
      .Case([](CombineOp c) {
        return Shapes{leadingPlus(c.getWeights(), shapeOf(c.getInput())[1])};
      })
      // Ops whose result shapes do not follow from their operands (scalars,
      // parameters, constants) keep the shapes they declare.
      .Case<CrossEntropyOp, LoadBalancingLossOp, RouterZLossOp, ReadParamOp,
            FillOp>([](Operation *o) {
        Shapes shapes;
        for (Value result : o->getResults())
          shapes.emplace_back(shapeOf(result));
        return shapes;
      })
      // Everything else keeps the shape of its first operand.
      .Default([](Operation *o) {
        return Shapes(o->getNumResults(),
                      SmallVector<int64_t>(shapeOf(o->getOperand(0))));
      });
}

struct SpecializeShapesPass
    : impl::MoeSpecializeShapesBase<SpecializeShapesPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t batch = this->batch, seq = this->seq;
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "no function @forward to specialise";
      return signalPassFailure();
    }
    // Tokens are counted in 32 bits in the runtime's routing (slots).
    constexpr int64_t kMaxTokens = int64_t(1) << 31;
    if (batch < 1 || seq < 1 || batch > kMaxTokens / seq) {
      module.emitError() << "batch and seq must be >= 1 with batch * seq <= "
                            "2^31 tokens, got batch "
                         << batch << " and seq " << seq;
      return signalPassFailure();
    }
    if (forward.getNumArguments() != 1 ||
        !isTokenIds(forward.getArgument(0).getType())) {
      forward.emitError() << "@forward must take one argument, the token ids "
                             "tensor<?x?xi32>";
      return signalPassFailure();
    }
    BlockArgument tokens = forward.getArgument(0);
    tokens.setType(withShape(tokens.getType(), {batch, seq}));

    WalkResult walk = forward.walk([&](Operation *op) -> WalkResult {
      if (op->getDialect() != op->getContext()->getLoadedDialect<MoeDialect>())
        return WalkResult::advance();
      for (auto [result, shape] :
           llvm::zip(op->getResults(), resultShapes(op))) {
        ArrayRef<int64_t> old = shapeOf(result);
        for (auto [before, after] : llvm::zip(old, shape))
          if (!ShapedType::isDynamic(before) && before != after) {
            op->emitOpError() << "result shape [" << old
                              << "] cannot become [" << ArrayRef(shape)
                              << "] at batch " << batch << ", seq " << seq;
            return WalkResult::interrupt();
          }
        result.setType(withShape(result.getType(), shape));
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();

    auto ret = cast<func::ReturnOp>(forward.getBody().back().getTerminator());
    forward.setType(FunctionType::get(&getContext(),
                                      forward.getBody().getArgumentTypes(),
                                      ret.getOperandTypes()));
  }

  static bool isTokenIds(Type type) {
    auto tensor = llvm::dyn_cast<RankedTensorType>(type);
    return tensor && tensor.getRank() == 2 &&
           tensor.getElementType().isInteger(32);
  }
};
} // namespace
} // namespace mlir::moe
