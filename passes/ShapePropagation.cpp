//===- ShapePropagation.cpp - static shapes from the arguments ------------===//
//
// Shapes flow forward: once the arguments are static, each op's result
// shapes follow from its operands by the op's own rule (the same relations
// its verifier checks), so one walk in program order makes them all static.
//
//===----------------------------------------------------------------------===//

#include "passes/ShapePropagation.h"

#include "dialects/moe/MoeOps.h"
#include "dialects/moe/ShapeChecks.h"

#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
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
      .Case([](SelectRowsOp s) {
        SmallVector<int64_t> shape(shapeOf(s.getIndex()));
        shape.push_back(shapeOf(s.getInput()).back());
        return Shapes{shape};
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
} // namespace

LogicalResult propagateShapes(func::FuncOp function, StringRef where) {
  WalkResult walk = function.walk([&](Operation *op) -> WalkResult {
    if (op->getDialect() != op->getContext()->getLoadedDialect<MoeDialect>())
      return WalkResult::advance();
    for (auto [result, shape] : llvm::zip(op->getResults(), resultShapes(op))) {
      ArrayRef<int64_t> old = shapeOf(result);
      for (auto [before, after] : llvm::zip(old, shape))
        if (!ShapedType::isDynamic(before) && before != after) {
          op->emitOpError() << "result shape " << shapeString(old)
                            << " cannot become " << shapeString(shape) << " "
                            << where;
          return WalkResult::interrupt();
        }
      result.setType(withShape(result.getType(), shape));
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  auto ret = cast<func::ReturnOp>(function.getBody().back().getTerminator());
  function.setType(FunctionType::get(function.getContext(),
                                     function.getBody().getArgumentTypes(),
                                     ret.getOperandTypes()));
  return success();
}

LogicalResult checkTokenCount(ModuleOp module, int64_t batch, int64_t seq) {
  // Tokens are counted in 32 bits in the runtime's routing (slots).
  constexpr int64_t kMaxTokens = int64_t(1) << 31;
  if (batch >= 1 && seq >= 1 && batch <= kMaxTokens / seq)
    return success();
  return module.emitError() << "batch and seq must be >= 1 with batch * seq "
                               "<= 2^31 tokens, got batch "
                            << batch << " and seq " << seq;
}

bool isTokenIds(Type type) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  return tensor && tensor.getRank() == 2 &&
         tensor.getElementType().isInteger(32);
}

void setArgumentShape(BlockArgument argument, ArrayRef<int64_t> shape) {
  argument.setType(withShape(argument.getType(), shape));
}
} // namespace mlir::moe
