//===- CpuBackend.h - the CPU backend ---------------------------*- C++ -*-===//

#ifndef MOERT_CPU_CPUBACKEND_H
#define MOERT_CPU_CPUBACKEND_H

#include "runtime/comm/Parallelism.h"
#include "runtime/exec/Backend.h"

#include <memory>

namespace moert {

struct CpuBackendOptions {
  /// Launches whose weights are constant keep each fused MoE block's experts
  /// repacked for the GEMM (runtime/cpu/PackedExperts.h): faster batches of
  /// more than a few tokens per expert, for the experts' weight bytes once
  /// more in memory.
  bool repackExperts = true;
};

/// The CPU backend: oneDNN GEMMs and OpenMP kernels. With `parallel`, the
/// kernels of an expert-parallel artifact exchange rows over its expert
/// groups and the losses are those of all ranks' batches together.
std::unique_ptr<Backend> createCpuBackend(comm::Parallelism *parallel = nullptr,
                                          CpuBackendOptions options = {});

} // namespace moert

#endif // MOERT_CPU_CPUBACKEND_H
