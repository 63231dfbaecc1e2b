//===- KernelCost.cpp - the work each kernel of an artifact does ----------===//

#include "runtime/profile/KernelCost.h"

#include "runtime/base/DType.h"

#include <algorithm>

namespace moert::profile {
namespace {

struct Tensor {
  std::vector<int64_t> shape;
  double elements = 1;
  double bytes = 0;

  int64_t last() const { return shape.empty() ? 1 : shape.back(); }
  /// Elements over the last dimension: tokens, for activations.
  double rows() const { return elements / double(std::max<int64_t>(last(), 1)); }
};

Tensor tensorOf(const fb::Model &model, int32_t id) {
  const fb::Value &value = *model.values()->Get(id);
  Tensor tensor;
  for (int64_t d : *value.shape()) {
    tensor.shape.push_back(d);
    tensor.elements *= double(d);
  }
  tensor.bytes = tensor.elements * double(dtypeSize(fromSchema(value.dtype())));
  return tensor;
}

int64_t intAttr(const fb::Kernel &kernel, size_t i) {
  const auto *ints = kernel.int_attrs();
  return ints && i < ints->size() ? ints->Get(i) : 0;
}

/// Scores and weighted values over the context each query sees: 2 products
/// of the query width per position (S(S+1)/2 positions when causal).
double attentionFlops(const fb::Kernel &kernel, const Tensor &query) {
  double batch = query.shape.size() == 3 ? double(query.shape[0]) : 1;
  double seq = query.shape.size() == 3 ? double(query.shape[1]) : query.rows();
  double positions = intAttr(kernel, 2) ? seq * (seq + 1) / 2 : seq * seq;
  return 2 * 2 * double(query.last()) * positions * batch;
}

/// FLOPs of the products of kernels made of them; -1 for the others.
double productFlops(const fb::Kernel &kernel, const std::vector<Tensor> &in) {
  switch (kernel.op()) {
  case fb::OpKind::Linear: // x [.., k], w [n, k]
  case fb::OpKind::Router:
    return 2 * in[0].elements * double(in[1].shape[0]);
  case fb::OpKind::LinearGradInput: // dy [.., n], w [n, k]
    return 2 * in[0].elements * double(in[1].shape[1]);
  case fb::OpKind::LinearGradWeight: // dy [.., n], x [.., k]
    return 2 * in[0].elements * double(in[1].last());
  case fb::OpKind::Attention:
    return attentionFlops(kernel, in[0]);
  case fb::OpKind::AttentionGrad: // P again, then dV, dP, dQ and dK
    return 2.5 * attentionFlops(kernel, in[0]);
  case fb::OpKind::ExpertMlp:
  case fb::OpKind::ExpertMlpTrain:
  case fb::OpKind::ExpertMlpGrad: {
    // Grouped rows x [rows, d]; gate [E, f, d]. Forward: gate, up, down.
    // Backward: 6 products, and 2 more when gate and up are recomputed.
    double perRow = 2 * double(in[2].shape[1]) * double(in[2].shape[2]);
    double products = kernel.op() != fb::OpKind::ExpertMlpGrad ? 3
                      : in.size() == 8                         ? 6
                                                               : 8;
    return products * in[0].rows() * perRow;
  }
  case fb::OpKind::FusedExperts:
  case fb::OpKind::FusedExpertsTrain:
  case fb::OpKind::FusedExpertsGrad: {
    // x [.., d]; router [E, d]; gate [E, f, d]. The backward recomputes gate
    // and up (8 expert products; 6 when the forward pass kept them, its two
    // last operands being [rows, f]) and takes the router's dx and dW (2).
    double tokens = in[0].rows(), rows = tokens * double(intAttr(kernel, 0));
    double expert = 2 * double(in[2].shape[1]) * double(in[2].shape[2]);
    double router = 2 * double(in[1].shape[0]) * double(in[1].shape[1]);
    if (kernel.op() != fb::OpKind::FusedExpertsGrad)
      return tokens * router + rows * 3 * expert;
    // Kept states: two operands beyond the 7, the logits gradient and the
    // labels (present when int attribute 3, ignore_index, is).
    size_t labels = kernel.int_attrs() && kernel.int_attrs()->size() > 3;
    bool kept = in.size() >= 9 + labels;
    return tokens * 2 * router + rows * (kept ? 6 : 8) * expert;
  }
  default:
    return -1;
  }
}

/// Arithmetic per element of the kernel's largest tensor, for kernels that
/// are not products.
double flopsPerElement(fb::OpKind op) {
  switch (op) {
  case fb::OpKind::Embedding:
  case fb::OpKind::Dispatch:
  case fb::OpKind::Fill:
  case fb::OpKind::Stack:
  case fb::OpKind::WriteParam:
    return 0;
  case fb::OpKind::Add:
  case fb::OpKind::Mul:
  case fb::OpKind::AddBias:
  case fb::OpKind::BiasGrad:
  case fb::OpKind::Clamp:
  case fb::OpKind::ClampGrad:
  case fb::OpKind::Scale:
  case fb::OpKind::EmbeddingGrad:
  case fb::OpKind::DispatchGrad:
    return 1;
  case fb::OpKind::Combine: // a multiply-add per routed row element
    return 2;
  case fb::OpKind::Rope:
    return 3;
  case fb::OpKind::RmsNorm:
  case fb::OpKind::Silu:
  case fb::OpKind::CrossEntropy: // max, subtract, exp, sum
  case fb::OpKind::CrossEntropyGrad:
  case fb::OpKind::LoadBalancingLoss:
  case fb::OpKind::LoadBalancingLossGrad:
  case fb::OpKind::RouterZLoss:
  case fb::OpKind::RouterZLossGrad:
  case fb::OpKind::CombineGrad:
    return 4;
  case fb::OpKind::Swiglu:
  case fb::OpKind::SigmoidGate:
    return 5;
  case fb::OpKind::SiluGrad:
  case fb::OpKind::SigmoidGateGrad:
    return 6;
  case fb::OpKind::RmsNormGrad:
  case fb::OpKind::SwigluGrad:
  case fb::OpKind::RouterGrad:
    return 8;
  default: // initialisation: about one operation per element drawn
    return 1;
  }
}

} // namespace

KernelCost kernelCost(const fb::Model &model, const fb::Kernel &kernel) {
  std::vector<Tensor> operands, results;
  for (int32_t id : *kernel.operands())
    operands.push_back(tensorOf(model, id));
  for (int32_t id : *kernel.results())
    results.push_back(tensorOf(model, id));

  KernelCost cost;
  double largest = 0;
  for (const auto *list : {&operands, &results})
    for (const Tensor &tensor : *list) {
      cost.bytes += tensor.bytes;
      largest = std::max(largest, tensor.elements);
    }
  if (kernel.op() == fb::OpKind::Embedding && operands.size() == 2 &&
      !results.empty()) // table [V, d], ids: only the gathered rows are read
    cost.bytes += results[0].bytes - operands[0].bytes;
  if (kernel.op() == fb::OpKind::CacheWrite && operands.size() == 3)
    cost.bytes += operands[1].bytes - operands[0].bytes; // rows stored, not read
  if ((kernel.op() == fb::OpKind::FusedExperts ||
       kernel.op() == fb::OpKind::FusedExpertsTrain ||
       kernel.op() == fb::OpKind::FusedExpertsGrad) &&
      operands.size() >= 5 && operands[2].shape.size() == 3) {
    // No more experts than routed rows can be read (decoding reads k).
    double experts = double(operands[2].shape[0]);
    double routed = operands[0].rows() * double(intAttr(kernel, 0));
    double unread = std::max(0.0, experts - routed);
    cost.bytes -= unread / experts *
                  (operands[2].bytes + operands[3].bytes + operands[4].bytes);
  }

  double products = productFlops(kernel, operands);
  cost.products = products >= 0;
  cost.flops = cost.products ? products : flopsPerElement(kernel.op()) * largest;
  return cost;
}

} // namespace moert::profile
