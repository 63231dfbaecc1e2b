//===- GroupedGemm.h - the experts' GEMMs in one cuBLAS call ----*- C++ -*-===//
//
// cublasGemmGroupedBatchedEx over the experts of an MoE block: problem i is
// c_i[m_i, n] = a_i[m_i, k] b_i[n, k]^T (row-major, the linear layout), all
// of one n, k and input type; problems of equal m form a group. Where this
// cuBLAS refuses the types (it answers at the call, before any work), the
// caller runs one cuBLASLt GEMM per problem instead, from then on, for
// inputs of that type (this cuBLAS may take fp32 and refuse bf16 inputs
// with fp32 outputs).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_GROUPEDGEMM_H
#define MOERT_CUDA_GROUPEDGEMM_H

#include "runtime/base/DType.h"
#include "runtime/cuda/StreamScratch.h"

#include "absl/status/statusor.h"

#include <cublas_v2.h>

#include <memory>
#include <vector>

namespace moert::cuda {

class GroupedGemm {
public:
  static absl::StatusOr<std::unique_ptr<GroupedGemm>> create(bool tf32);
  ~GroupedGemm();

  struct Problem {
    const void *a, *b;
    float *c;
    int64_t m;
  };
  /// Runs every problem (fp32 outputs, fp32 accumulation); Unimplemented
  /// when cuBLAS refuses the call, which then stays refused for inputs of
  /// that type.
  absl::Status run(const std::vector<Problem> &problems, int64_t n, int64_t k,
                   DType inputs, StreamScratch &scratch, cudaStream_t stream);
  bool refused(DType inputs) const {
    return inputs == DType::kBF16 ? refusedBf16_ : refusedF32_;
  }

private:
  GroupedGemm(cublasHandle_t handle, cudaEvent_t copied, bool tf32)
      : handle_(handle), copied_(copied), tf32_(tf32) {}
  /// Copies `pointers` to `device` in stream order through pinned staging,
  /// so the host need not wait for the copy (nor the stream drain) before
  /// the call's host arrays go.
  absl::Status stage(const std::vector<const void *> &pointers, void **device,
                     cudaStream_t stream);
  cublasHandle_t handle_;
  cudaEvent_t copied_; // recorded after the last copy out of staging_
  const void **staging_ = nullptr; // pinned
  size_t stagingCount_ = 0;
  bool tf32_;
  bool refusedBf16_ = false, refusedF32_ = false;
};

} // namespace moert::cuda

#endif // MOERT_CUDA_GROUPEDGEMM_H
