//===- FusedExperts.h - a whole MoE block on the device ---------*- C++ -*-===//

#ifndef MOERT_CUDA_FUSEDEXPERTS_H
#define MOERT_CUDA_FUSEDEXPERTS_H

#include "runtime/cuda/CudaContext.h"

namespace moert::cuda {

/// moe.fused_experts on one device (no labels, experts not split).
absl::Status fusedExpertsForward(const KernelLaunch &launch,
                                 CudaContext &context, cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_FUSEDEXPERTS_H
