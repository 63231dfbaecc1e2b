//===- CudaGradLaunch.h - training and initialisation ops -------*- C++ -*-===//

#ifndef MOERT_CUDA_CUDAGRADLAUNCH_H
#define MOERT_CUDA_CUDAGRADLAUNCH_H

#include "runtime/cuda/CudaContext.h"

namespace moert::cuda {

/// Whether the CUDA backend runs this training op (checked when prepared).
absl::Status checkCudaGradLaunch(const KernelLaunch &launch);
/// Enqueues a prepared training op on `stream`, whose fault slot is
/// `fault`.
absl::Status launchCudaGrad(const KernelLaunch &launch, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault);

/// The same for the ops of initialisation programs (CudaInitLaunch.cpp).
absl::Status checkCudaInitLaunch(const KernelLaunch &launch);
absl::Status launchCudaInit(const KernelLaunch &launch, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault);
/// "the CUDA backend has no kernel for OP yet (LOCATION)".
absl::Status noKernel(const KernelLaunch &launch);

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDAGRADLAUNCH_H
