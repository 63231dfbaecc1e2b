//===- LaunchChecks.cpp - shape rules every backend enforces --------------===//
//
// The compiler's verifiers already hold for a well-formed artifact; these
// checks make sure a damaged or hand-edited one is refused before a kernel
// reads or writes out of bounds. They are backend-independent.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/LaunchChecks.h"

#include "runtime/artifact/Bf16Activations.h"
#include "runtime/exec/LaunchChecker.h"

namespace moert {
using namespace launch_checks;

absl::Status checkLaunch(const KernelLaunch &launch) {
  Checker c(launch);
  auto f32 = [](DType t) { return t == DType::kF32; };
  switch (launch.kernel->op()) {
  case fb::OpKind::Embedding:
    c.counts(2, 1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "table", 2, 2);
    c.dtype(c.operand(0), "table", isWeight(c.operand(0).dtype));
    c.dtype(c.operand(1), "ids", c.operand(1).dtype == DType::kI32);
    if (c.ok())
      c.shape(c.result(0), "result", withLast(c.operand(1).shape, c.operand(0).shape[1]));
    break;
  case fb::OpKind::RmsNorm:
    c.counts(2, 1);
    c.floats(1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "input", 1);
    c.dtype(c.operand(1), "weight", isWeight(c.operand(1).dtype));
    if (c.ok()) {
      c.normGroup(c.operand(1), c.operand(0).shape.back());
      c.shape(c.result(0), "result", c.operand(0).shape);
    }
    break;
  case fb::OpKind::AddBias:
    c.counts(2, 1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "input", 1);
    c.dtype(c.operand(1), "bias", isWeight(c.operand(1).dtype));
    if (c.ok()) {
      c.shape(c.operand(1), "bias", {c.operand(0).shape.back()});
      c.shape(c.result(0), "result", c.operand(0).shape);
    }
    break;
  case fb::OpKind::Clamp:
    c.counts(1, 1);
    c.floats(1);
    if (c.ok())
      c.shape(c.result(0), "result", c.operand(0).shape);
    break;
  case fb::OpKind::SigmoidGate:
    c.counts(2, 1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "input", 1);
    if (c.ok()) {
      c.shape(c.operand(1), "gate", withLast(leading(c.operand(0)), 1));
      c.shape(c.result(0), "result", c.operand(0).shape);
    }
    break;
  case fb::OpKind::Linear:
    c.counts(2, 1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "input", 1);
    c.rank(c.operand(1), "weight", 2, 2);
    c.dtype(c.operand(1), "weight", isWeight(c.operand(1).dtype));
    if (c.ok()) {
      c.rule(c.operand(1).shape[1] == c.operand(0).shape.back(),
             "weight and input widths differ");
      c.shape(c.result(0), "result",
              withLast(leading(c.operand(0)), c.operand(1).shape[0]));
    }
    break;
  case fb::OpKind::Rope: {
    c.rule(launch.operands.size() == 1 || launch.operands.size() == 2,
           "expects 1 or 2 operands");
    c.rule(launch.results.size() == 1, "expects 1 result");
    c.ints(1);
    c.floats(1);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0);
    c.rank(x, "input", 3, 3);
    int64_t heads = c.intAttr(0);
    c.rule(c.ok() && heads > 0 && x.shape[2] % heads == 0 &&
               (x.shape[2] / heads) % 2 == 0,
           "width is not heads x an even head dim");
    if (launch.operands.size() == 2 && c.ok()) {
      c.dtype(c.operand(1), "positions", isInt(c.operand(1).dtype));
      c.shape(c.operand(1), "positions", {x.shape[0], x.shape[1]});
    }
    if (c.ok())
      c.shape(c.result(0), "result", x.shape);
    break;
  }
  case fb::OpKind::Attention:
    c.counts(3, 1);
    if (c.ok() && checkAttentionInputs(c))
      c.shape(c.result(0), "result", c.operand(0).shape);
    break;
  case fb::OpKind::Add:
  case fb::OpKind::Mul:
  case fb::OpKind::Swiglu:
    c.counts(2, 1);
    if (c.ok()) {
      c.shape(c.operand(1), "rhs", c.operand(0).shape);
      c.shape(c.result(0), "result", c.operand(0).shape);
    }
    break;
  case fb::OpKind::Silu:
    c.counts(1, 1);
    if (c.ok())
      c.shape(c.result(0), "result", c.operand(0).shape);
    break;
  case fb::OpKind::Router: {
    c.counts(2, 3);
    c.ints(2);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0), &w = c.operand(1);
    c.rank(x, "input", 1);
    c.rank(w, "weight", 2, 2);
    c.dtype(w, "weight", isWeight(w.dtype));
    if (!c.ok())
      break;
    int64_t experts = w.shape[0], k = c.intAttr(0);
    c.rule(w.shape[1] == x.shape.back(), "weight and input widths differ");
    c.rule(k >= 1 && k <= experts, "top_k outside [1, experts]");
    c.shape(c.result(0), "logits", withLast(leading(x), experts));
    c.shape(c.result(1), "weights", withLast(leading(x), k));
    c.shape(c.result(2), "indices", withLast(leading(x), k));
    c.dtype(c.result(2), "indices", c.result(2).dtype == DType::kI32);
    break;
  }
  case fb::OpKind::Dispatch: {
    c.counts(2, 3);
    c.ints(1);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0), &idx = c.operand(1);
    c.rank(x, "input", 1);
    c.dtype(idx, "indices", idx.dtype == DType::kI32);
    if (!c.ok())
      break;
    c.rule(leading(idx) == leading(x), "indices and input token dims differ");
    int64_t rows = product(idx.shape);
    c.shape(c.result(0), "grouped", {rows, x.shape.back()});
    c.shape(c.result(1), "counts", {c.intAttr(0)});
    c.dtype(c.result(1), "counts", c.result(1).dtype == DType::kI64);
    c.shape(c.result(2), "source_slots", {rows});
    c.dtype(c.result(2), "source_slots", c.result(2).dtype == DType::kI32);
    break;
  }
  case fb::OpKind::ExpertMlp:
    c.counts(5, 1);
    if (c.ok() && checkExpertInputs(c))
      c.shape(c.result(0), "result", c.operand(0).shape);
    break;
  case fb::OpKind::Combine:
    c.counts(3, 1);
    if (c.ok() && checkCombineInputs(c))
      c.shape(c.result(0), "result",
              withLast(leading(c.operand(1)), c.operand(0).shape[1]));
    break;
  case fb::OpKind::FusedExperts:
    c.counts(FusedBlockOperands(launch).count(/*grad=*/false), 2);
    if (c.ok() && checkFusedExpertsInputs(c)) {
      checkFusedBlockExtras(c, FusedBlockOperands(launch));
      const TensorRef &x = c.operand(0);
      c.shape(c.result(0), "result", x.shape);
      c.shape(c.result(1), "logits", withLast(leading(x), c.operand(1).shape[0]));
    }
    break;
  case fb::OpKind::CrossEntropy:
    c.counts(2, 1);
    if (c.ok() && checkCrossEntropyInputs(c))
      c.shape(c.result(0), "loss", {});
    break;
  case fb::OpKind::LoadBalancingLoss:
    c.rule(launch.results.size() == 1, "expects one result");
    c.ints(2);
    if (!c.ok() ||
        !checkRouterLossInputs(c, launch, launch.operands.size() - 1))
      break;
    c.rule(c.intAttr(0) >= 1 && c.intAttr(0) <= c.operand(1).shape.back(),
           "top_k outside [1, experts]");
    c.shape(c.result(0), "loss", {});
    break;
  case fb::OpKind::RandomIndices:
    c.counts(0, 1);
    c.ints(3);
    if (!c.ok())
      break;
    c.rule(c.intAttr(0) >= 0 && c.intAttr(0) <= c.intAttr(1),
           "count outside [0, range]");
    c.shape(c.result(0), "indices", {c.intAttr(0)});
    c.dtype(c.result(0), "indices", c.result(0).dtype == DType::kI64);
    break;
  case fb::OpKind::SliceMoments:
  case fb::OpKind::ResampleSlice:
  case fb::OpKind::AddNoiseSlice: {
    bool moments = launch.kernel->op() == fb::OpKind::SliceMoments;
    c.counts(moments ? 2 : launch.kernel->op() == fb::OpKind::ResampleSlice ? 4 : 2,
             moments ? 2 : 1);
    c.ints(moments ? 1 : 2);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0), &indices = c.operand(1);
    c.rank(x, "input", 2, 2);
    c.rank(indices, "indices", 1, 1);
    c.dtype(x, "input", f32(x.dtype));
    c.dtype(indices, "indices", indices.dtype == DType::kI64);
    int64_t axis = c.intAttr(0);
    c.rule(axis == 0 || axis == 1, "axis must be 0 or 1");
    if (!c.ok())
      break;
    c.rule(indices.shape[0] <= x.shape[axis], "more indices than the axis holds");
    if (moments) {
      c.shape(c.result(0), "mean", {});
      c.shape(c.result(1), "std", {});
    } else {
      if (launch.operands.size() == 4) {
        c.shape(c.operand(2), "mean", {});
        c.shape(c.operand(3), "std", {});
      }
      c.shape(c.result(0), "result", x.shape);
    }
    break;
  }
  case fb::OpKind::RandomTensor:
    c.counts(0, 1);
    c.ints(2);
    c.floats(1);
    break;
  case fb::OpKind::Slice: {
    c.counts(1, 1);
    c.ints(2);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0), &y = c.result(0);
    c.rank(x, "input", 2, 2);
    c.rank(y, "result", 2, 2);
    c.dtype(x, "input", f32(x.dtype));
    int64_t axis = c.intAttr(0), offset = c.intAttr(1);
    c.rule(axis == 0 || axis == 1, "axis must be 0 or 1");
    if (!c.ok())
      break;
    c.rule(offset >= 0 && offset <= x.shape[axis] - y.shape[axis] &&
               x.shape[1 - axis] == y.shape[1 - axis],
           "the slice does not fit in the input");
    break;
  }
  case fb::OpKind::Scale:
    c.counts(1, 1);
    c.floats(1);
    if (c.ok())
      c.shape(c.result(0), "result", c.operand(0).shape);
    break;
  case fb::OpKind::Stack: {
    c.rule(!launch.operands.empty() && launch.results.size() == 1,
           "expects inputs and one result");
    if (!c.ok())
      break;
    // Split over an expert group (int attribute 0), one rank's share.
    int64_t inputs = int64_t(launch.operands.size()), split = c.intAttrOr(0, 1);
    c.rule(split >= 1 && inputs % split == 0,
           "the expert-parallel degree does not divide the inputs");
    if (!c.ok())
      break;
    Shape shape = {inputs / split};
    for (int64_t d : c.operand(0).shape)
      shape.push_back(d);
    for (const TensorRef &input : launch.operands) {
      c.shape(input, "input", c.operand(0).shape);
      c.dtype(input, "input", f32(input.dtype));
    }
    c.shape(c.result(0), "result", shape);
    break;
  }
  case fb::OpKind::WriteParam:
    c.rule(false, "write_param is carried out by the executor, not launched");
    break;
  case fb::OpKind::CacheWrite: {
    c.counts(3, 0);
    if (!c.ok())
      break;
    const TensorRef &cache = c.operand(0), &rows = c.operand(1);
    c.rank(cache, "cache", 3, 3);
    c.rank(rows, "rows", 3, 3);
    c.dtype(cache, "cache", f32(cache.dtype));
    c.dtype(rows, "rows", f32(rows.dtype));
    c.dtype(c.operand(2), "positions", c.operand(2).dtype == DType::kI32);
    if (!c.ok())
      break;
    c.rule(cache.shape[0] == rows.shape[0] && cache.shape[2] == rows.shape[2],
           "rows do not fit the cache's batch and width");
    c.shape(c.operand(2), "positions", {rows.shape[0], rows.shape[1]});
    break;
  }
  case fb::OpKind::CachedAttention: {
    c.counts(4, 1);
    c.ints(3);
    c.floats(1);
    if (!c.ok())
      break;
    const TensorRef &q = c.operand(0), &keys = c.operand(2);
    c.rank(q, "query", 3, 3);
    c.rank(keys, "key cache", 3, 3);
    c.dtype(c.operand(1), "positions", c.operand(1).dtype == DType::kI32);
    c.dtype(keys, "key cache", f32(keys.dtype));
    int64_t heads = c.intAttr(0), kvHeads = c.intAttr(1);
    c.rule(c.ok() && heads > 0 && kvHeads > 0 && heads % kvHeads == 0 &&
               q.shape[2] % heads == 0,
           "bad head counts");
    if (!c.ok())
      break;
    c.shape(keys, "key cache",
            {q.shape[0], keys.shape[1], kvHeads * (q.shape[2] / heads)});
    c.shape(c.operand(3), "value cache", keys.shape);
    c.dtype(c.operand(3), "value cache", f32(c.operand(3).dtype));
    c.shape(c.operand(1), "positions", {q.shape[0], q.shape[1]});
    c.shape(c.result(0), "result", q.shape);
    break;
  }
  case fb::OpKind::SelectRows: {
    c.counts(2, 1);
    if (!c.ok())
      break;
    const TensorRef &input = c.operand(0), &index = c.operand(1);
    c.rank(input, "input", 3, 3);
    c.rank(index, "index", 2, 2);
    c.dtype(index, "index", index.dtype == DType::kI32);
    if (c.ok()) {
      c.rule(index.shape[0] == input.shape[0], "index and input batch differ");
      c.shape(c.result(0), "result",
              {index.shape[0], index.shape[1], input.shape[2]});
    }
    break;
  }
  default:
    return checkGradLaunch(launch);
  }
  if (!c.ok())
    return c.done();
  // Activations are fp32 (weights may be bf16/f16), except where the kernel
  // writes them rounded to bf16 (Bf16Activations.h).
  for (size_t r = 0; r < launch.results.size(); ++r) {
    DType dtype = launch.results[r].dtype;
    bool bf16 = dtype == DType::kBF16 &&
                writesBf16Activation(launch.kernel->op(), r);
    if (!f32(dtype) && !isInt(dtype) && !bf16)
      return bad("results must be fp32 or integer");
  }
  return absl::OkStatus();
}

} // namespace moert
