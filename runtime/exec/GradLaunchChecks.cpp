//===- GradLaunchChecks.cpp - shape rules of the training ops -------------===//
//
// The backward ops mirror their forward ops: each check restates the forward
// relations between the operands it reads again, and requires every
// gradient to have the shape of the value it is the gradient of.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/LaunchChecker.h"
#include "runtime/exec/LaunchChecks.h"

namespace moert {
using namespace launch_checks;

namespace {
/// Per-layer router logits followed by one scalar loss gradient; one
/// gradient result per layer.
/// Labels, router logits, the loss gradient; one logits gradient per layer.
void checkPerLayerGrads(Checker &c, const KernelLaunch &launch) {
  size_t layers = launch.operands.size() - 2;
  c.rule(launch.operands.size() >= 3 && launch.results.size() == layers,
         "expects labels, router logits, a loss gradient and one result per "
         "layer");
  if (!c.ok() || !checkRouterLossInputs(c, launch, layers))
    return;
  c.shape(c.operand(layers + 1), "loss gradient", {});
  for (size_t i = 0; i < layers && c.ok(); ++i)
    c.shape(c.result(i), "logits gradient", c.operand(i + 1).shape);
}
} // namespace

absl::Status checkGradLaunch(const KernelLaunch &launch) {
  Checker c(launch);
  switch (launch.kernel->op()) {
  case fb::OpKind::Fill:
    c.counts(0, 1);
    c.floats(1);
    break;
  case fb::OpKind::EmbeddingGrad: {
    c.counts(2, 1);
    if (!c.ok())
      break;
    const TensorRef &dy = c.operand(0), &ids = c.operand(1);
    c.rank(dy, "result gradient", 2);
    c.rank(c.result(0), "table gradient", 2, 2);
    c.dtype(ids, "ids", ids.dtype == DType::kI32);
    if (c.ok()) {
      c.shape(ids, "ids", leading(dy));
      c.rule(c.result(0).shape[1] == dy.shape.back(),
             "table and result widths differ");
    }
    break;
  }
  case fb::OpKind::RmsNormGrad: {
    c.counts(3, 2);
    c.floats(1);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0);
    c.rank(x, "input", 1);
    if (!c.ok())
      break;
    c.normGroup(c.operand(1), x.shape.back());
    c.dtype(c.operand(1), "weight", isWeight(c.operand(1).dtype));
    c.shape(c.operand(2), "result gradient", x.shape);
    c.shape(c.result(0), "input gradient", x.shape);
    c.shape(c.result(1), "weight gradient", c.operand(1).shape);
    break;
  }
  case fb::OpKind::BiasGrad:
    c.counts(1, 1);
    if (!c.ok())
      break;
    c.rank(c.operand(0), "result gradient", 1);
    if (c.ok())
      c.shape(c.result(0), "bias gradient", {c.operand(0).shape.back()});
    break;
  case fb::OpKind::ClampGrad:
    c.counts(2, 1);
    c.floats(1);
    if (!c.ok())
      break;
    c.shape(c.operand(1), "result gradient", c.operand(0).shape);
    c.shape(c.result(0), "input gradient", c.operand(0).shape);
    break;
  case fb::OpKind::SigmoidGateGrad: {
    c.counts(3, 2);
    if (!c.ok())
      break;
    const TensorRef &x = c.operand(0);
    c.rank(x, "input", 1);
    if (!c.ok())
      break;
    c.shape(c.operand(1), "gate", withLast(leading(x), 1));
    c.shape(c.operand(2), "result gradient", x.shape);
    c.shape(c.result(0), "input gradient", x.shape);
    c.shape(c.result(1), "gate gradient", withLast(leading(x), 1));
    break;
  }
  case fb::OpKind::LinearGradInput: {
    c.counts(2, 1);
    if (!c.ok())
      break;
    const TensorRef &dy = c.operand(0), &w = c.operand(1);
    c.rank(dy, "result gradient", 1);
    c.rank(w, "weight", 2, 2);
    c.dtype(w, "weight", isWeight(w.dtype));
    if (!c.ok())
      break;
    c.rule(w.shape[0] == dy.shape.back(), "weight and gradient widths differ");
    c.shape(c.result(0), "input gradient", withLast(leading(dy), w.shape[1]));
    break;
  }
  case fb::OpKind::LinearGradWeight: {
    c.counts(2, 1);
    if (!c.ok())
      break;
    const TensorRef &dy = c.operand(0), &x = c.operand(1);
    c.rank(dy, "result gradient", 1);
    c.rank(x, "input", 1);
    if (!c.ok())
      break;
    c.rule(product(leading(dy)) == product(leading(x)),
           "gradient and input rows differ");
    c.shape(c.result(0), "weight gradient", {dy.shape.back(), x.shape.back()});
    break;
  }
  case fb::OpKind::AttentionGrad: {
    c.counts(4, 3);
    if (!c.ok() || !checkAttentionInputs(c))
      break;
    const TensorRef &q = c.operand(0), &k = c.operand(1);
    c.shape(c.operand(3), "result gradient", q.shape);
    c.shape(c.result(0), "query gradient", q.shape);
    c.shape(c.result(1), "key gradient", k.shape);
    c.shape(c.result(2), "value gradient", k.shape);
    break;
  }
  case fb::OpKind::SiluGrad:
  case fb::OpKind::SwigluGrad: {
    bool swiglu = launch.kernel->op() == fb::OpKind::SwigluGrad;
    c.counts(swiglu ? 3 : 2, swiglu ? 2 : 1);
    if (!c.ok())
      break;
    for (const TensorRef &t : launch.operands)
      c.shape(t, "operand", c.operand(0).shape);
    for (const TensorRef &t : launch.results)
      c.shape(t, "result", c.operand(0).shape);
    break;
  }
  case fb::OpKind::RouterGrad: {
    c.rule((launch.operands.size() == 3 || launch.operands.size() == 4) &&
               launch.results.size() == 1,
           "expects 3 or 4 operands and 1 result");
    c.ints(2);
    if (!c.ok())
      break;
    const TensorRef &logits = c.operand(0);
    c.rank(logits, "logits", 1);
    if (!c.ok())
      break;
    int64_t k = c.intAttr(0), experts = logits.shape.back();
    c.rule(k >= 1 && k <= experts, "top_k outside [1, experts]");
    c.shape(c.operand(1), "indices", withLast(leading(logits), k));
    c.dtype(c.operand(1), "indices", c.operand(1).dtype == DType::kI32);
    c.shape(c.operand(2), "weights gradient", withLast(leading(logits), k));
    if (launch.operands.size() == 4)
      c.shape(c.operand(3), "logits gradient", logits.shape);
    c.shape(c.result(0), "result", logits.shape);
    break;
  }
  case fb::OpKind::DispatchGrad: {
    c.counts(2, 1);
    c.ints(1);
    if (!c.ok())
      break;
    const TensorRef &grouped = c.operand(0), &dx = c.result(0);
    c.rank(grouped, "grouped gradient", 2, 2);
    c.rank(dx, "input gradient", 1);
    if (!c.ok())
      break;
    int64_t k = c.intAttr(0);
    c.rule(k >= 1 && product(leading(dx)) * k == grouped.shape[0] &&
               dx.shape.back() == grouped.shape[1],
           "grouped rows != tokens x top_k");
    c.shape(c.operand(1), "source_slots", {grouped.shape[0]});
    c.dtype(c.operand(1), "source_slots", c.operand(1).dtype == DType::kI32);
    break;
  }
  case fb::OpKind::ExpertMlpTrain:
  case fb::OpKind::ExpertMlpGrad: {
    bool train = launch.kernel->op() == fb::OpKind::ExpertMlpTrain;
    if (train)
      c.counts(5, 3);
    else
      c.rule((launch.operands.size() == 6 || launch.operands.size() == 8) &&
                 launch.results.size() == 4,
             "expects 6 or 8 operands and 4 results");
    if (!c.ok() || !checkExpertInputs(c))
      break;
    const TensorRef &x = c.operand(0), &gate = c.operand(2);
    std::vector<int64_t> hidden = {x.shape[0], gate.shape[1]};
    if (train) {
      c.shape(c.result(0), "result", x.shape);
      c.shape(c.result(1), "gate hidden", hidden);
      c.shape(c.result(2), "up hidden", hidden);
      break;
    }
    if (launch.operands.size() == 8) {
      c.shape(c.operand(6), "saved gate hidden", hidden);
      c.shape(c.operand(7), "saved up hidden", hidden);
    }
    c.shape(c.operand(5), "result gradient", x.shape);
    c.shape(c.result(0), "input gradient", x.shape);
    c.shape(c.result(1), "gate gradient", gate.shape);
    c.shape(c.result(2), "up gradient", gate.shape);
    c.shape(c.result(3), "down gradient", c.operand(4).shape);
    break;
  }
  case fb::OpKind::FusedExpertsTrain: {
    FusedBlockOperands at(launch);
    c.counts(at.count(/*grad=*/false), 4);
    if (!c.ok() || !checkFusedExpertsInputs(c))
      break;
    checkFusedBlockExtras(c, at);
    const TensorRef &x = c.operand(0);
    c.rule(c.intAttrOr(2, 1) == 1, "experts split over ranks");
    c.shape(c.result(0), "result", x.shape);
    c.shape(c.result(1), "logits", withLast(leading(x), c.operand(1).shape[0]));
    int64_t rows = product(leading(x)) * c.intAttr(0);
    c.shape(c.result(2), "gate hidden state", {rows, c.operand(2).shape[1]});
    c.shape(c.result(3), "up hidden state", {rows, c.operand(2).shape[1]});
    break;
  }
  case fb::OpKind::FusedExpertsGrad: {
    FusedBlockOperands at(launch);
    c.rule(launch.operands.size() >= 7 &&
               size_t(at.count(/*grad=*/true)) == launch.operands.size() &&
               launch.results.size() == 5,
           absl::StrCat("expects 7 operands, then a logits gradient, labels "
                        "(with ignore_index) and two hidden states as "
                        "present, and 5 results, got ",
                        launch.operands.size(), " and ",
                        launch.results.size()));
    if (!c.ok() || !checkFusedExpertsInputs(c))
      break;
    checkFusedBlockExtras(c, at);
    const TensorRef &x = c.operand(0);
    std::vector<int64_t> logits = withLast(leading(x), c.operand(1).shape[0]);
    c.shape(c.operand(5), "logits", logits);
    c.shape(c.operand(6), "result gradient", x.shape);
    if (at.logitsGrad >= 0)
      c.shape(c.operand(at.logitsGrad), "logits gradient", logits);
    c.shape(c.result(0), "input gradient", x.shape);
    for (int i = 1; i < 5; ++i)
      c.shape(c.result(i), "weight gradient", c.operand(i).shape);
    break;
  }
  case fb::OpKind::CombineGrad: {
    c.counts(4, 2);
    if (!c.ok() || !checkCombineInputs(c))
      break;
    const TensorRef &y = c.operand(0), &w = c.operand(1);
    c.shape(c.operand(3), "result gradient", withLast(leading(w), y.shape[1]));
    c.shape(c.result(0), "input gradient", y.shape);
    c.shape(c.result(1), "weights gradient", w.shape);
    break;
  }
  case fb::OpKind::CrossEntropyGrad:
    c.counts(3, 1);
    if (!c.ok() || !checkCrossEntropyInputs(c))
      break;
    c.shape(c.operand(2), "loss gradient", {});
    c.shape(c.result(0), "logits gradient", c.operand(0).shape);
    break;
  case fb::OpKind::LoadBalancingLossGrad:
    c.ints(2);
    checkPerLayerGrads(c, launch);
    if (c.ok())
      c.rule(c.intAttr(0) >= 1 && c.intAttr(0) <= c.operand(1).shape.back(),
             "top_k outside [1, experts]");
    break;
  case fb::OpKind::RouterZLossGrad:
    c.ints(1);
    checkPerLayerGrads(c, launch);
    break;
  case fb::OpKind::RouterZLoss:
    c.rule(launch.results.size() == 1, "expects one result");
    c.ints(1);
    if (c.ok() &&
        checkRouterLossInputs(c, launch, launch.operands.size() - 1))
      c.shape(c.result(0), "loss", {});
    break;
  default:
    return bad("unknown op");
  }
  if (!c.ok())
    return c.done();
  for (const TensorRef &result : launch.results)
    if (result.dtype != DType::kF32)
      return bad("training results must be fp32");
  return absl::OkStatus();
}

} // namespace moert
