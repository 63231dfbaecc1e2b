//===- CudaContext.h - what the CUDA launch table works with ----*- C++ -*-===//

#ifndef MOERT_CUDA_CUDACONTEXT_H
#define MOERT_CUDA_CUDACONTEXT_H

#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.h"
#include "runtime/cuda/GroupedGemm.h"
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
  std::unique_ptr<Gemm> gemm; // one workspace: one stream at a time
  std::unique_ptr<GroupedGemm> grouped; // the experts' GEMMs in one call
  ExpertGemms expertGemms = ExpertGemms::kAuto;
  /// The source locations of launches that can fault, by the site index
  /// their kernels write into a fault slot.
  std::vector<std::string> siteLocations;
  std::unordered_map<std::string, int32_t> siteOf;

  int32_t site(const KernelLaunch &launch);
  /// "LOCATION: " of a site, or "" for an unknown one.
  std::string siteLocation(int32_t site) const {
    return site >= 0 && size_t(site) < siteLocations.size()
               ? siteLocations[site] + ": "
               : "";
  }
};

/// Refuses a launch whose heads (operand 0's width over int attribute 0,
/// the head count) are wider than `most` features.
absl::Status checkHeadWidth(const KernelLaunch &launch, int64_t most,
                            const char *what);
/// Whether the CUDA backend runs this launch's op (checked when prepared).
absl::Status checkCudaLaunch(const KernelLaunch &launch);
/// Whether the launch's kernel takes its bf16 activations as they are
/// stored, with no fp32 view (runtime/exec/Fp32View.h).
bool readsStoredBf16(const KernelLaunch &launch);
/// Enqueues a prepared launch on `stream`, whose fault slot is `fault`.
absl::Status launchCuda(const KernelLaunch &launch, CudaContext &context,
                        cudaStream_t stream, DeviceFault *fault);

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDACONTEXT_H
