//===- CpuLaunch.h - reading a bound launch for the CPU kernels -*- C++ -*-===//

#ifndef MOERT_EXEC_CPULAUNCH_H
#define MOERT_EXEC_CPULAUNCH_H

#include "runtime/cpu/Kernels.h"
#include "runtime/exec/Backend.h"

#include <string>

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

/// Runs a training-program op (the backward kernels of runtime/cpu/Grad.h).
absl::Status launchGrad(const KernelLaunch &launch);

} // namespace moert::cpu_launch

#endif // MOERT_EXEC_CPULAUNCH_H
