//===- CudaGradLaunch.h - the CUDA backend's training ops -------*- C++ -*-===//

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

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDAGRADLAUNCH_H
