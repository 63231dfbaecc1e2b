//===- Experts.h - MoE blocks on the device, fused or as a chain -*- C++ -*-===//

#ifndef MOERT_CUDA_EXPERTS_H
#define MOERT_CUDA_EXPERTS_H

#include "runtime/cuda/CudaContext.h"

namespace moert::cuda {

/// moe.fused_experts (and _train, which keeps the gate and up rows) on one
/// device, skipping a training step's unlabelled tails.
absl::Status fusedExpertsForward(const KernelLaunch &launch,
                                 CudaContext &context, cudaStream_t stream,
                                 DeviceFault *fault);
/// moe.fused_experts_grad (ExpertsGrad.cpp).
absl::Status fusedExpertsBackward(const KernelLaunch &launch,
                                  CudaContext &context, cudaStream_t stream,
                                  DeviceFault *fault);
/// The unfused chain (--no-fuse): moe.dispatch, moe.expert_mlp and
/// moe.combine, as the CPU's dispatch, expertMlp and combine.
absl::Status dispatchForward(const KernelLaunch &launch, CudaContext &context,
                             cudaStream_t stream, DeviceFault *fault);
absl::Status expertMlpForward(const KernelLaunch &launch, CudaContext &context,
                              cudaStream_t stream);
/// moe.expert_mlp's backward (ExpertsGrad.cpp).
absl::Status expertMlpBackward(const KernelLaunch &launch,
                               CudaContext &context, cudaStream_t stream);
absl::Status combineForward(const KernelLaunch &launch, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault);

} // namespace moert::cuda

#endif // MOERT_CUDA_EXPERTS_H
