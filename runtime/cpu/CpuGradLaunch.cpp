//===- CpuGradLaunch.cpp - the CPU backend's training ops -----------------===//
//
// One case per op of a training program, handing the bound tensors to the
// backward kernels of runtime/cpu/Grad.h. Shapes were checked by
// checkGradLaunch when the program was prepared.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuLaunch.h"
#include "runtime/cpu/Grad.h"

#include <algorithm>

namespace moert::cpu_launch {

absl::Status launchGrad(const KernelLaunch &l, const Ranks &ranks) {
  const auto &in = l.operands;
  const TensorRef &out = l.results[0];
  switch (l.kernel->op()) {
  case fb::OpKind::Fill:
    std::fill_n(out.as<float>(), out.numElements(), float(floatAttr(l, 0)));
    return absl::OkStatus();
  case fb::OpKind::EmbeddingGrad:
    cpu::embeddingGrad(in[1].as<int32_t>(), in[1].numElements(),
                       in[0].as<float>(), out.shape[0], out.shape[1],
                       out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::RmsNormGrad: {
    int64_t group = in[1].shape[0];
    cpu::rmsNormGrad(in[0].as<float>(), weight(in[1]), in[2].as<float>(),
                     in[0].numElements() / group, group, floatAttr(l, 0),
                     out.as<float>(), l.results[1].as<float>());
    return absl::OkStatus();
  }
  case fb::OpKind::BiasGrad:
    cpu::biasGrad(in[0].as<float>(), rows(in[0]), lastDim(in[0]),
                  out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::ClampGrad:
    cpu::clampGrad(in[0].as<float>(), in[1].as<float>(), out.numElements(),
                   float(floatAttr(l, 0)), out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::SigmoidGateGrad:
    cpu::sigmoidGateGrad(in[0].as<float>(), in[1].as<float>(),
                         in[2].as<float>(), rows(in[0]), lastDim(in[0]),
                         out.as<float>(), l.results[1].as<float>());
    return absl::OkStatus();
  case fb::OpKind::LinearGradInput:
    return cpu::linearGradInput(in[0].as<float>(), rows(in[0]), lastDim(in[0]),
                                weight(in[1]), in[1].shape[1], out.as<float>());
  case fb::OpKind::LinearGradWeight:
    if (in[1].dtype == DType::kBF16) // stored as bf16 (bf16 GEMMs are native)
      return cpu::linearGradWeightBf16(in[0].as<float>(), in[1].as<uint16_t>(),
                                       rows(in[0]), lastDim(in[0]),
                                       lastDim(in[1]), out.as<float>());
    return cpu::linearGradWeight(
        in[0].as<float>(), in[1].as<float>(), rows(in[0]), lastDim(in[0]),
        lastDim(in[1]), out.as<float>(), /*bf16=*/attrOr(l, 0, 0) != 0);
  case fb::OpKind::AttentionGrad: {
    int64_t heads = attr(l, 0);
    if (in[0].dtype == DType::kBF16) { // with k and v (readsStoredBf16)
      cpu::attentionGradStoredBf16(
          in[0].as<uint16_t>(), in[1].as<uint16_t>(), in[2].as<uint16_t>(),
          in[3].as<float>(), in[0].shape[0], in[0].shape[1], heads, attr(l, 1),
          lastDim(in[0]) / heads, attr(l, 2) != 0, floatAttr(l, 0),
          out.as<float>(), l.results[1].as<float>(), l.results[2].as<float>());
      return absl::OkStatus();
    }
    cpu::attentionGrad(in[0].as<float>(), in[1].as<float>(), in[2].as<float>(),
                       in[3].as<float>(), in[0].shape[0], in[0].shape[1], heads,
                       attr(l, 1), lastDim(in[0]) / heads, attr(l, 2) != 0,
                       floatAttr(l, 0), out.as<float>(),
                       l.results[1].as<float>(), l.results[2].as<float>(),
                       /*bf16=*/attrOr(l, 3, 0) != 0);
    return absl::OkStatus();
  }
  case fb::OpKind::SiluGrad:
    cpu::siluGrad(in[0].as<float>(), in[1].as<float>(), out.numElements(),
                  out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::SwigluGrad:
    cpu::swigluGrad(in[0].as<float>(), in[1].as<float>(), in[2].as<float>(),
                    out.numElements(), out.as<float>(),
                    l.results[1].as<float>());
    return absl::OkStatus();
  case fb::OpKind::RouterGrad:
    cpu::routerGrad(in[0].as<float>(), in[1].as<int32_t>(), in[2].as<float>(),
                    in.size() > 3 ? in[3].as<float>() : nullptr, rows(in[0]),
                    lastDim(in[0]), attr(l, 0), attr(l, 1) != 0,
                    out.as<float>());
    return absl::OkStatus();
  case fb::OpKind::DispatchGrad:
    return cpu::dispatchGrad(in[0].as<float>(), in[1].as<int32_t>(), rows(out),
                             attr(l, 0), lastDim(out), out.as<float>());
  case fb::OpKind::ExpertMlpGrad: {
    const TensorRef &gate = in[2];
    const int64_t *counts = in[1].as<int64_t>();
    if (auto status = checkCounts(counts, gate.shape[0], in[0].shape[0]);
        !status.ok())
      return status;
    bool saved = in.size() == 8;
    return cpu::expertMlpGrad(
        in[0].as<float>(), counts, gate.shape[0], gate.shape[2], gate.shape[1],
        weight(in[2]), weight(in[3]), weight(in[4]), in[5].as<float>(),
        out.as<float>(), l.results[1].as<float>(), l.results[2].as<float>(),
        l.results[3].as<float>(), saved ? in[6].as<float>() : nullptr,
        saved ? in[7].as<float>() : nullptr);
  }
  case fb::OpKind::FusedExpertsGrad: {
    FusedBlockOperands at(l);
    cpu::KeptHidden saved;
    if (at.saved >= 0)
      saved = {in[at.saved].as<float>(), in[at.saved + 1].as<float>()};
    return cpu::fusedExpertsGrad(
        in[0].as<float>(), rows(in[0]), moeBlockWeights(l), attr(l, 0),
        attr(l, 1) != 0, in[5].as<float>(), in[6].as<float>(),
        at.logitsGrad >= 0 ? in[at.logitsGrad].as<float>() : nullptr,
        out.as<float>(), l.results[1].as<float>(), l.results[2].as<float>(),
        l.results[3].as<float>(), l.results[4].as<float>(), ranks.experts(l),
        ranks.exchangeChunks(), unlabelledTail(l), saved);
  }
  case fb::OpKind::CombineGrad:
    return cpu::combineGrad(in[0].as<float>(), in[1].as<float>(),
                            in[2].as<int32_t>(), rows(in[1]), lastDim(in[1]),
                            lastDim(in[0]), in[3].as<float>(), out.as<float>(),
                            l.results[1].as<float>());
  case fb::OpKind::CrossEntropyGrad:
    return cpu::crossEntropyGrad(in[0].as<float>(), in[1].as<int32_t>(),
                                 rows(in[0]), lastDim(in[0]), attr(l, 0),
                                 *in[2].as<float>(), out.as<float>(),
                                 ranks.world());
  case fb::OpKind::LoadBalancingLossGrad: {
    PerLayer layer = perLayer(l, in.size() - 2, /*grads=*/true);
    return cpu::loadBalancingLossGrad(
        layer.logits, layer.tokens, lastDim(in[1]), attr(l, 0),
        *in.back().as<float>(), layer.grads, tokenMask(l), ranks.world());
  }
  case fb::OpKind::RouterZLoss: {
    PerLayer layer = perLayer(l, in.size() - 1, /*grads=*/false);
    return cpu::routerZLoss(layer.logits, layer.tokens, lastDim(in[1]),
                            out.as<float>(), tokenMask(l), ranks.world());
  }
  case fb::OpKind::RouterZLossGrad: {
    PerLayer layer = perLayer(l, in.size() - 2, /*grads=*/true);
    return cpu::routerZLossGrad(layer.logits, layer.tokens, lastDim(in[1]),
                                *in.back().as<float>(), layer.grads,
                                tokenMask(l), ranks.world());
  }
  default:
    return absl::UnimplementedError("no CPU kernel for this op");
  }
}

} // namespace moert::cpu_launch
