//===- CpuLaunch.h - reading a bound launch for the CPU kernels -*- C++ -*-===//

#ifndef MOERT_CPU_CPULAUNCH_H
#define MOERT_CPU_CPULAUNCH_H

#include "runtime/comm/Parallelism.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/exec/FusedBlockOperands.h"
#include "runtime/exec/LaunchAttrs.h"

#include <vector>

namespace moert::cpu_launch {

using namespace launch_attrs;

inline cpu::Weight weight(const TensorRef &t) { return {t.data, t.dtype}; }
/// A fused MoE block's weights, operands 1-4 of its launch.
inline cpu::MoeBlockWeights moeBlockWeights(const KernelLaunch &launch) {
  const auto &in = launch.operands;
  return {weight(in[1]),   weight(in[2]),   weight(in[3]), weight(in[4]),
          in[1].shape[0], in[2].shape[2], in[2].shape[1],
          // What CpuBackend::prepare made of a fused forward launch.
          static_cast<const cpu::PackedExperts *>(launch.prepared.get())};
}

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

#endif // MOERT_CPU_CPULAUNCH_H
