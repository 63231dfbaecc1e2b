//===- CpuLaunch.h - reading a bound launch for the CPU kernels -*- C++ -*-===//

#ifndef MOERT_EXEC_CPULAUNCH_H
#define MOERT_EXEC_CPULAUNCH_H

#include "runtime/cpu/Kernels.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/FusedBlockOperands.h"

#include <string>
#include <vector>

namespace moert::cpu_launch {

inline int64_t attr(const KernelLaunch &launch, size_t i) {
  return launch.kernel->int_attrs()->Get(i);
}
/// An optional trailing integer attribute (absent in older artifacts).
inline int64_t attrOr(const KernelLaunch &launch, size_t i, int64_t otherwise) {
  auto *attrs = launch.kernel->int_attrs();
  return attrs && i < attrs->size() ? attrs->Get(i) : otherwise;
}
inline double floatAttr(const KernelLaunch &launch, size_t i) {
  return launch.kernel->float_attrs()->Get(i);
}
inline cpu::Weight weight(const TensorRef &t) { return {t.data, t.dtype}; }
inline std::string stream(const KernelLaunch &launch) {
  return launch.kernel->stream() ? launch.kernel->stream()->str() : "";
}
inline int64_t lastDim(const TensorRef &t) { return t.shape.back(); }
/// A fused MoE block's weights, operands 1-4 of its launch.
inline cpu::MoeBlockWeights moeBlockWeights(const KernelLaunch &launch) {
  const auto &in = launch.operands;
  return {weight(in[1]),   weight(in[2]),   weight(in[3]), weight(in[4]),
          in[1].shape[0], in[2].shape[2], in[2].shape[1]};
}
inline int64_t rows(const TensorRef &t) { return t.numElements() / lastDim(t); }

/// Expert row counts come from a dispatch of this run: checked before a
/// kernel trusts them.
absl::Status checkCounts(const int64_t *counts, int64_t experts, int64_t rows);

/// What the kernels of a multi-process run reach the other ranks through.
struct Ranks {
  comm::Parallelism *parallel = nullptr;

  /// Every rank (the losses' global batch); null for one process.
  comm::Communicator *world() const {
    return parallel ? parallel->world : nullptr;
  }
  /// The expert group a fused MoE launch exchanges rows over: null when its
  /// experts are not split (int attribute 2, the expert-parallel degree,
  /// absent or 1).
  comm::Communicator *experts(const KernelLaunch &launch) const {
    return expertSplit(launch) > 1 ? parallel->experts.get() : nullptr;
  }
  /// The expert-parallel degree of a fused MoE launch or of a stack of
  /// experts (1 for other ops).
  static int64_t expertSplit(const KernelLaunch &launch) {
    switch (launch.kernel->op()) {
    case fb::OpKind::FusedExperts:
    case fb::OpKind::FusedExpertsTrain:
    case fb::OpKind::FusedExpertsGrad:
      return attrOr(launch, 2, 1);
    case fb::OpKind::Stack:
      return attrOr(launch, 0, 1);
    default:
      return 1;
    }
  }
  int64_t exchangeChunks() const {
    return parallel ? parallel->exchangeChunks : 1;
  }
  /// This rank's share of split experts (0 for one process).
  int expertShare() const { return parallel ? parallel->expertRank() : 0; }
  /// A launch whose experts are split over more ranks than this run's
  /// expert groups hold is refused before it runs.
  absl::Status check(const KernelLaunch &launch) const;
};

/// Runs a training-program op (the backward kernels of runtime/cpu/Grad.h).
absl::Status launchGrad(const KernelLaunch &launch, const Ranks &ranks);

/// The router logits operands of a per-layer loss op and their token counts.
struct PerLayer {
  std::vector<const float *> logits;
  std::vector<int64_t> tokens;
  std::vector<float *> grads;
};

/// Operands: the labels, then `layers` router logits.
inline PerLayer perLayer(const KernelLaunch &l, size_t layers, bool grads) {
  PerLayer layer;
  for (size_t i = 0; i < layers; ++i) {
    layer.logits.push_back(l.operands[i + 1].as<float>());
    layer.tokens.push_back(rows(l.operands[i + 1]));
    if (grads)
      layer.grads.push_back(l.results[i].as<float>());
  }
  return layer;
}

/// The tokens a router loss counts: its operand 0 holds the labels, its
/// last integer attribute is ignore_index.
inline cpu::TokenMask tokenMask(const KernelLaunch &launch) {
  return {launch.operands[0].as<int32_t>(),
          attr(launch, launch.kernel->int_attrs()->size() - 1)};
}

/// The tokens a fused block skips: those of its labels [rows, seq]'
/// unlabelled tails (integer attribute 3 is ignore_index), if it has them.
inline cpu::UnlabelledTail unlabelledTail(const KernelLaunch &launch) {
  FusedBlockOperands at(launch);
  if (at.labels < 0)
    return {};
  const TensorRef &labels = launch.operands[at.labels];
  return {labels.as<int32_t>(), labels.shape.back(), attr(launch, 3)};
}

} // namespace moert::cpu_launch

#endif // MOERT_EXEC_CPULAUNCH_H
