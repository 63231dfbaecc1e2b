//===- CpuBackend.h - the CPU backend ---------------------------*- C++ -*-===//

#ifndef MOERT_CPU_CPUBACKEND_H
#define MOERT_CPU_CPUBACKEND_H

#include "runtime/comm/Parallelism.h"
#include "runtime/exec/Backend.h"

#include <memory>

namespace moert {

/// The CPU backend: oneDNN GEMMs and OpenMP kernels. With `parallel`, the
/// kernels of an expert-parallel artifact exchange rows over its expert
/// groups and the losses are those of all ranks' batches together.
std::unique_ptr<Backend> createCpuBackend(comm::Parallelism *parallel = nullptr);

} // namespace moert

#endif // MOERT_CPU_CPUBACKEND_H
