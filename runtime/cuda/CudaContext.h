//===- CudaContext.h - what the CUDA launch table works with ----*- C++ -*-===//

#ifndef MOERT_CUDA_CUDACONTEXT_H
#define MOERT_CUDA_CUDACONTEXT_H

#include "runtime/cuda/Gemm.h"
#include "runtime/cuda/LaunchShape.h"
#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/exec/Backend.h"

#include "absl/status/status.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace moert::cuda {

struct CudaContext {
  DeviceLimits limits;
  std::unique_ptr<Gemm> gemm;
  /// The stream's fault slot (device memory) and the launches that can
  /// fault, by site index, for the message.
  DeviceFault *fault = nullptr;
  std::vector<std::string> siteLocations;
  std::unordered_map<const fb::Kernel *, int32_t> siteOf;

  int32_t site(const KernelLaunch &launch);
};

/// Whether the CUDA backend runs this launch's op (checked when prepared).
absl::Status checkCudaLaunch(const KernelLaunch &launch);
/// Enqueues a prepared launch.
absl::Status launchCuda(const KernelLaunch &launch, CudaContext &context,
                        cudaStream_t stream);

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDACONTEXT_H
