//===- Gemm.h - cuBLASLt GEMMs on row-major operands ------------*- C++ -*-===//
//
// c[M, N] = op(a) op(b) with a [M, K] (or [K, M], transposed) and b [K, N]
// (or [N, K], transposed), all row-major, fp32 accumulation. A bf16 weight
// meets its input rounded to bf16, as the CPU's oneDNN path does: an input
// a bf16 model stores as bf16 is read as it is, and a result it stores as
// bf16 is rounded in the GEMM's epilogue, so such a layer is one cuBLASLt
// call with no conversions around it. fp32 runs in fp32, or TF32 when the
// user opted in; an f16 weight is widened to fp32 first. Plans (layouts and
// the heuristic's algorithm) are cached per shape, types, transposes and
// operand alignment.
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

/// One row-major operand of a product: its data (in the product's input
/// type) and whether it is stored transposed.
struct GemmOperand {
  const void *data;
  bool transposed = false;
};

/// Row-major activations: fp32, or bf16 as a bf16 model stores them.
struct Activation {
  const void *data;
  DType type = DType::kF32;
};

class Gemm {
public:
  static absl::StatusOr<std::unique_ptr<Gemm>> create(bool tf32);
  ~Gemm();

  /// c[m, n] = op(a) op(b) (or c += op(a) op(b) with `accumulate`), a and b
  /// both in `inputs` (fp32 or bf16).
  absl::Status product(GemmOperand a, GemmOperand b, float *c, int64_t m,
                       int64_t n, int64_t k, DType inputs, cudaStream_t stream,
                       bool accumulate = false) {
    return product(a, b, c, DType::kF32, m, n, k, inputs, stream, accumulate);
  }

  /// y[M, N] = x[M, K] w[N, K]^T (the torch.nn.Linear layout), w in any
  /// weight dtype, x and y fp32.
  absl::Status linear(const float *x, int64_t m, int64_t k, const void *w,
                      DType wType, int64_t n, float *y, cudaStream_t stream) {
    return linear({x}, m, k, w, wType, n, y, DType::kF32, stream);
  }
  /// As above, x and y (of type yType) each fp32 or, with a bf16 w, bf16
  /// activations.
  absl::Status linear(Activation x, int64_t m, int64_t k, const void *w,
                      DType wType, int64_t n, void *y, DType yType,
                      cudaStream_t stream);
  /// As linear, for x and w both already in `inputs` (fp32 or bf16).
  absl::Status matmul(const void *x, const void *w, float *y, int64_t m,
                      int64_t k, int64_t n, DType inputs, cudaStream_t stream) {
    return product({x}, {w, true}, y, m, n, k, inputs, stream);
  }
  /// dx[M, K] = dy[M, N] w[N, K] (linear's backward to its input).
  absl::Status linearGradInput(const float *dy, int64_t m, int64_t n,
                               const void *w, DType wType, int64_t k,
                               float *dx, cudaStream_t stream);
  /// dw[N, K] = dy[M, N]^T x[M, K] (to its weight), in fp32 or, with
  /// `bf16`, on dy and x rounded to bf16 (x may be a bf16 activation then).
  absl::Status linearGradWeight(const float *dy, Activation x, int64_t m,
                                int64_t n, int64_t k, bool bf16, float *dw,
                                cudaStream_t stream);

private:
  struct Plan;
  Gemm(cublasLtHandle_t handle, void *workspace, bool tf32);
  /// As the public product, c of type `output` (fp32, or bf16 rounded from
  /// the fp32 sums, never accumulated into).
  absl::Status product(GemmOperand a, GemmOperand b, void *c, DType output,
                       int64_t m, int64_t n, int64_t k, DType inputs,
                       cudaStream_t stream, bool accumulate);
  /// m, n, k, inputs, output, a and b transposed, and the byte alignments of
  /// a, b and c: an expert's rows start anywhere in its grouped buffer, and
  /// cuBLASLt's heuristic must not pick a kernel that assumes more.
  using PlanKey = std::tuple<int64_t, int64_t, int64_t, DType, DType, bool,
                             bool, int, int, int>;
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
