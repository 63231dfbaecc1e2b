//===- Gemm.h - cuBLASLt GEMMs in the torch.nn.Linear layout ----*- C++ -*-===//
//
// y[M, N] = x[M, K] * w[N, K]^T with fp32 x and y. A bf16 weight meets x
// rounded to bf16 (fp32 accumulation), as the CPU's oneDNN path does; an
// fp32 weight runs in fp32, or TF32 when the user opted in; an f16 weight is
// widened to fp32 first. Plans (layouts and the heuristic's algorithm) are
// cached per shape.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_GEMM_H
#define MOERT_CUDA_GEMM_H

#include "runtime/base/DType.h"
#include "runtime/cuda/LaunchShape.h"

#include "absl/status/statusor.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <tuple>

namespace moert::cuda {

class Gemm {
public:
  static absl::StatusOr<std::unique_ptr<Gemm>> create(bool tf32);
  ~Gemm();

  absl::Status linear(const float *x, int64_t m, int64_t k, const void *w,
                      DType wType, int64_t n, float *y, cudaStream_t stream);
  /// As linear, for x and w both already in `inputs` (fp32 or bf16).
  absl::Status matmul(const void *x, const void *w, float *y, int64_t m,
                      int64_t k, int64_t n, DType inputs, cudaStream_t stream);

private:
  struct Plan;
  Gemm(cublasLtHandle_t handle, void *workspace, bool tf32);
  /// `alignment` holds the byte alignments of x, w and y: an expert's rows
  /// start anywhere in its grouped buffer, and cuBLASLt's heuristic must not
  /// pick a kernel that assumes more.
  using PlanKey = std::tuple<int64_t, int64_t, int64_t, DType, int, int, int>;
  absl::StatusOr<Plan *> plan(const PlanKey &key);

  cublasLtHandle_t handle_;
  void *workspace_;
  bool tf32_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

/// cuBLASLt's workspace (what its Hopper kernels ask for).
constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

} // namespace moert::cuda

#endif // MOERT_CUDA_GEMM_H
