//===- Gemm.cpp - cuBLASLt GEMMs in the torch.nn.Linear layout ------------===//
//
// Row-major y[M, N] is column-major y^T[N, M] = w[N, K] * x^T[K, M]: the
// weight is A (stored [K, N] column-major, transposed), x is B, no copies.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Gemm.h"

#include "runtime/cuda/CudaStatus.h"
#include "runtime/cuda/kernels/Kernels.h"

namespace moert::cuda {

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (c)
      cublasLtMatrixLayoutDestroy(c);
    if (b)
      cublasLtMatrixLayoutDestroy(b);
    if (a)
      cublasLtMatrixLayoutDestroy(a);
    if (desc)
      cublasLtMatmulDescDestroy(desc);
  }
};

Gemm::Gemm(cublasLtHandle_t handle, void *workspace, bool tf32)
    : handle_(handle), workspace_(workspace), tf32_(tf32) {}

absl::StatusOr<std::unique_ptr<Gemm>> Gemm::create(bool tf32) {
  cublasLtHandle_t handle;
  if (auto s = cublasStatus(cublasLtCreate(&handle), "cublasLtCreate");
      !s.ok())
    return s;
  void *workspace = nullptr;
  if (auto s = cudaStatus(cudaMalloc(&workspace, kGemmWorkspaceBytes),
                          "GEMM workspace");
      !s.ok()) {
    cublasLtDestroy(handle);
    return s;
  }
  return std::unique_ptr<Gemm>(new Gemm(handle, workspace, tf32));
}

Gemm::~Gemm() {
  plans_.clear();
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

namespace {
/// The largest power of two up to 256 that divides the address.
int alignmentOf(const void *p) {
  auto address = reinterpret_cast<uintptr_t>(p);
  int alignment = 1;
  while (alignment < 256 && address % (2 * alignment) == 0)
    alignment *= 2;
  return alignment;
}
} // namespace

absl::StatusOr<Gemm::Plan *> Gemm::plan(const PlanKey &key) {
  auto [m, k, n, inputs, alignX, alignW, alignY] = key;
  if (auto found = plans_.find(key); found != plans_.end())
    return found->second.get();
  // Expert GEMMs see a new row count at almost every batch: bound the cache.
  constexpr size_t kMostPlans = 4096;
  if (plans_.size() >= kMostPlans)
    plans_.clear();
  auto plan = std::make_unique<Plan>();
  cudaDataType_t in = inputs == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t compute =
      inputs == DType::kF32 && tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32
                                     : CUBLAS_COMPUTE_32F;
  cublasOperation_t transpose = CUBLAS_OP_T;
  auto check = [](cublasStatus_t status) {
    return cublasStatus(status, "cuBLASLt GEMM plan");
  };
  if (auto s = check(cublasLtMatmulDescCreate(&plan->desc, compute, CUDA_R_32F));
      !s.ok())
    return s;
  if (auto s = check(cublasLtMatmulDescSetAttribute(
          plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
          sizeof(transpose)));
      !s.ok())
    return s;
  if (auto s = check(cublasLtMatrixLayoutCreate(&plan->a, in, k, n, k));
      !s.ok())
    return s;
  if (auto s = check(cublasLtMatrixLayoutCreate(&plan->b, in, k, m, k));
      !s.ok())
    return s;
  if (auto s = check(cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_32F, n, m, n));
      !s.ok())
    return s;
  cublasLtMatmulPreference_t preference;
  if (auto s = check(cublasLtMatmulPreferenceCreate(&preference)); !s.ok())
    return s;
  size_t workspace = kGemmWorkspaceBytes;
  cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
      sizeof(workspace));
  // A is the weight, B the input, C and D the output.
  uint32_t alignments[] = {uint32_t(alignW), uint32_t(alignX), uint32_t(alignY),
                           uint32_t(alignY)};
  cublasLtMatmulPreferenceAttributes_t which[] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    cublasLtMatmulPreferenceSetAttribute(preference, which[i], &alignments[i],
                                         sizeof(uint32_t));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle_, plan->desc, plan->a, plan->b, plan->c, plan->c, preference, 1,
      &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (auto s = check(status); !s.ok())
    return s;
  if (found == 0)
    return absl::UnimplementedError(absl::StrCat(
        "cuBLASLt has no algorithm for a ", m, " x ", k, " x ", n, " GEMM"));
  plan->algo = result.algo;
  Plan *raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

absl::Status Gemm::matmul(const void *x, const void *w, float *y, int64_t m,
                       int64_t k, int64_t n, DType inputs,
                       cudaStream_t stream) {
  absl::StatusOr<Plan *> plan = this->plan(
      {m, k, n, inputs, alignmentOf(x), alignmentOf(w), alignmentOf(y)});
  if (!plan.ok())
    return plan.status();
  const float one = 1.0f, zero = 0.0f;
  return cublasStatus(
      cublasLtMatmul(handle_, (*plan)->desc, &one, w, (*plan)->a, x, (*plan)->b,
                     &zero, y, (*plan)->c, y, (*plan)->c, &(*plan)->algo,
                     workspace_, kGemmWorkspaceBytes, stream),
      "cuBLASLt GEMM");
}

absl::Status Gemm::linear(const float *x, int64_t m, int64_t k, const void *w,
                          DType wType, int64_t n, float *y,
                          cudaStream_t stream) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (wType == DType::kF32)
    return matmul(x, w, y, m, k, n, DType::kF32, stream);
  // A temporary from the stream-ordered pool: x rounded to bf16 beside a
  // bf16 weight, or an f16 weight widened to fp32.
  bool bf16 = wType == DType::kBF16;
  int64_t count = bf16 ? m * k : n * k;
  void *converted = nullptr;
  if (auto s = cudaStatus(
          cudaMallocAsync(&converted, count * (bf16 ? 2 : 4), stream),
          "GEMM input conversion");
      !s.ok())
    return s;
  LaunchShape shape = elementwiseShape(count);
  cudaError_t error =
      bf16 ? roundToBf16(x, count, static_cast<uint16_t *>(converted), shape,
                         stream)
           : widen(w, wType, count, static_cast<float *>(converted), shape,
                   stream);
  absl::Status status = cudaStatus(error, bf16 ? "round to bf16" : "widen f16");
  if (status.ok())
    status = bf16 ? matmul(converted, w, y, m, k, n, DType::kBF16, stream)
                  : matmul(x, converted, y, m, k, n, DType::kF32, stream);
  cudaFreeAsync(converted, stream);
  return status;
}

} // namespace moert::cuda
