//===- CudaBackend.h - the CUDA backend -------------------------*- C++ -*-===//

#ifndef MOERT_CUDA_CUDABACKEND_H
#define MOERT_CUDA_CUDABACKEND_H

#include "runtime/exec/Backend.h"

#include "absl/status/statusor.h"

#include <memory>
#include <string>
#include <vector>

namespace moert {

/// How a fused MoE forward runs its bf16 experts' GEMMs: the tiled GEMMs
/// that read the experts' row counts on the device (the SwiGLU in the
/// gate/up GEMM's epilogue, no round trip to the host) wherever they fit
/// (d and f multiples of 8, aligned weights), cuBLAS's grouped GEMM over
/// counts brought to the host, or by the batch (kAuto: tiled up to
/// kTiledRowsPerExpert rows per expert on average).
enum class ExpertGemms { kAuto, kTiled, kCublas };

struct CudaOptions {
  int device = 0;
  /// fp32 GEMMs through TF32 tensor cores (opt-in: it rounds inputs to 10
  /// mantissa bits).
  bool tf32 = false;
  ExpertGemms expertGemms = ExpertGemms::kAuto;
};

/// The CUDA backend on one device: a stream-ordered memory pool, streams,
/// weights uploaded once through pinned staging, cuBLASLt GEMMs. An error
/// when there is no device or driver.
absl::StatusOr<std::unique_ptr<Backend>>
createCudaBackend(const CudaOptions &options = {});

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0; // compute capability
  size_t memoryBytes = 0;
  int multiprocessors = 0;
};

/// The devices the driver shows; an error naming the cause when it shows
/// none (no driver, no device).
absl::StatusOr<std::vector<CudaDeviceInfo>> listCudaDevices();

} // namespace moert

#endif // MOERT_CUDA_CUDABACKEND_H
