//===- CudaStatus.h - CUDA and cuBLAS errors as statuses --------*- C++ -*-===//

#ifndef MOERT_CUDA_CUDASTATUS_H
#define MOERT_CUDA_CUDASTATUS_H

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

namespace moert::cuda {

/// OK, or "`what`: <the CUDA error string>".
inline absl::Status cudaStatus(cudaError_t error, std::string_view what) {
  if (error == cudaSuccess)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat(std::string(what), ": ",
                                          cudaGetErrorString(error)));
}

inline absl::Status cublasStatus(cublasStatus_t status, std::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat(std::string(what), ": cuBLAS ",
                                          cublasLtGetStatusString(status)));
}

} // namespace moert::cuda

#endif // MOERT_CUDA_CUDASTATUS_H
