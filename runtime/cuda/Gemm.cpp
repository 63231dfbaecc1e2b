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
  auto [m, n, k, inputs, output, aTransposed, bTransposed, alignA, alignB,
        alignC] = key;
  if (auto found = plans_.find(key); found != plans_.end())
    return found->second.get();
  // Expert GEMMs see a new row count at almost every batch: bound the cache.
  constexpr size_t kMostPlans = 4096;
  if (plans_.size() >= kMostPlans)
    plans_.clear();
  auto plan = std::make_unique<Plan>();
  cudaDataType_t in = inputs == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cudaDataType_t out = output == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t compute =
      inputs == DType::kF32 && tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32
                                     : CUBLAS_COMPUTE_32F;
  auto check = [](cublasStatus_t status) {
    return cublasStatus(status, "cuBLASLt GEMM plan");
  };
  // Row-major c[m, n] is column-major c^T[n, m] = op(b)^T op(a)^T: cuBLASLt's
  // A is our b, its B our a. A row-major [r, c] matrix is a column-major
  // [c, r] one with leading dimension c.
  cublasOperation_t opA = bTransposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = aTransposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (auto s = check(cublasLtMatmulDescCreate(&plan->desc, compute, CUDA_R_32F));
      !s.ok())
    return s;
  for (auto [attribute, op] :
       {std::pair{CUBLASLT_MATMUL_DESC_TRANSA, &opA},
        std::pair{CUBLASLT_MATMUL_DESC_TRANSB, &opB}})
    if (auto s = check(cublasLtMatmulDescSetAttribute(plan->desc, attribute, op,
                                                      sizeof(*op)));
        !s.ok())
      return s;
  // b is [k, n] row-major (column-major [n, k]) or, transposed, [n, k].
  if (auto s = check(bTransposed
                         ? cublasLtMatrixLayoutCreate(&plan->a, in, k, n, k)
                         : cublasLtMatrixLayoutCreate(&plan->a, in, n, k, n));
      !s.ok())
    return s;
  // a is [m, k] row-major (column-major [k, m]) or, transposed, [k, m].
  if (auto s = check(aTransposed
                         ? cublasLtMatrixLayoutCreate(&plan->b, in, m, k, m)
                         : cublasLtMatrixLayoutCreate(&plan->b, in, k, m, k));
      !s.ok())
    return s;
  if (auto s = check(cublasLtMatrixLayoutCreate(&plan->c, out, n, m, n));
      !s.ok())
    return s;
  cublasLtMatmulPreference_t preference;
  if (auto s = check(cublasLtMatmulPreferenceCreate(&preference)); !s.ok())
    return s;
  size_t workspace = kGemmWorkspaceBytes;
  cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
      sizeof(workspace));
  // cuBLASLt's A is our b, its B our a; C and D are c.
  uint32_t alignments[] = {uint32_t(alignB), uint32_t(alignA), uint32_t(alignC),
                           uint32_t(alignC)};
  cublasLtMatmulPreferenceAttributes_t which[] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    cublasLtMatmulPreferenceSetAttribute(preference, which[i], &alignments[i],
                                         sizeof(uint32_t));
  // A bf16 result is the fp32 sum rounded once: a split-K must add its
  // parts in fp32, not in the output type.
  if (output == DType::kBF16) {
    uint32_t reductions =
        CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
        sizeof(reductions));
  }
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
        "cuBLASLt has no algorithm for a ", m, " x ", n, " x ", k, " GEMM"));
  plan->algo = result.algo;
  Plan *raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

absl::Status Gemm::product(GemmOperand a, GemmOperand b, void *c, DType output,
                           int64_t m, int64_t n, int64_t k, DType inputs,
                           cudaStream_t stream, bool accumulate) {
  if (m == 0 || n == 0 || (k == 0 && accumulate))
    return absl::OkStatus();
  if (k == 0) // an empty sum (bf16's zero is all zero bits, as fp32's)
    return cudaStatus(cudaMemsetAsync(c, 0, m * n * dtypeSize(output), stream),
                      "GEMM");
  absl::StatusOr<Plan *> plan =
      this->plan({m, n, k, inputs, output, a.transposed, b.transposed,
                  alignmentOf(a.data), alignmentOf(b.data), alignmentOf(c)});
  if (!plan.ok())
    return plan.status();
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  return cublasStatus(
      cublasLtMatmul(handle_, (*plan)->desc, &one, b.data, (*plan)->a, a.data,
                     (*plan)->b, &beta, c, (*plan)->c, c, (*plan)->c,
                     &(*plan)->algo, workspace_, kGemmWorkspaceBytes, stream),
      "cuBLASLt GEMM");
}

namespace {

/// fp32 values converted for a GEMM, in stream-ordered scratch.
class Converted {
public:
  explicit Converted(cudaStream_t stream) : stream_(stream) {}
  ~Converted() {
    if (data_)
      cudaFreeAsync(data_, stream_);
  }
  /// `x` [n] rounded to bf16.
  absl::StatusOr<const void *> bf16(const float *x, int64_t n) {
    if (auto s = take(n * 2); !s.ok())
      return s;
    return finish(roundToBf16(x, n, static_cast<uint16_t *>(data_),
                              elementwiseShape(n), stream_),
                  "round to bf16");
  }
  /// A weight [n] of `type` widened to fp32.
  absl::StatusOr<const void *> widened(const void *w, DType type, int64_t n) {
    if (auto s = take(n * 4); !s.ok())
      return s;
    return finish(widen(w, type, n, static_cast<float *>(data_),
                        elementwiseShape(n), stream_),
                  "widen f16");
  }

private:
  absl::Status take(int64_t bytes) {
    return cudaStatus(cudaMallocAsync(&data_, std::max<int64_t>(bytes, 1),
                                      stream_),
                      "GEMM input conversion");
  }
  absl::StatusOr<const void *> finish(cudaError_t error, const char *what) {
    if (auto s = cudaStatus(error, what); !s.ok())
      return s;
    return static_cast<const void *>(data_);
  }
  cudaStream_t stream_;
  void *data_ = nullptr;
};

} // namespace

absl::Status Gemm::linear(Activation x, int64_t m, int64_t k, const void *w,
                          DType wType, int64_t n, void *y, DType yType,
                          cudaStream_t stream) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (wType == DType::kBF16) {
    Converted converted(stream);
    absl::StatusOr<const void *> in =
        x.type == DType::kBF16 // stored rounded, as the GEMM reads it
            ? absl::StatusOr<const void *>(x.data)
            : converted.bf16(static_cast<const float *>(x.data), m * k);
    if (!in.ok())
      return in.status();
    return product({*in}, {w, true}, y, yType, m, n, k, DType::kBF16, stream,
                   false);
  }
  if (x.type != DType::kF32 || yType != DType::kF32)
    return absl::InvalidArgumentError(
        "a linear layer reads and writes bf16 activations only with bf16 "
        "weights");
  if (wType == DType::kF32)
    return matmul(x.data, w, static_cast<float *>(y), m, k, n, DType::kF32,
                  stream);
  Converted converted(stream);
  absl::StatusOr<const void *> wide = converted.widened(w, wType, n * k);
  if (!wide.ok())
    return wide.status();
  return matmul(x.data, *wide, static_cast<float *>(y), m, k, n, DType::kF32,
                stream);
}

absl::Status Gemm::linearGradInput(const float *dy, int64_t m, int64_t n,
                                   const void *w, DType wType, int64_t k,
                                   float *dx, cudaStream_t stream) {
  if (m == 0 || k == 0)
    return absl::OkStatus();
  Converted converted(stream);
  if (wType == DType::kF32)
    return product({dy}, {w}, dx, m, k, n, DType::kF32, stream);
  if (wType == DType::kBF16) {
    absl::StatusOr<const void *> rounded = converted.bf16(dy, m * n);
    if (!rounded.ok())
      return rounded.status();
    return product({*rounded}, {w}, dx, m, k, n, DType::kBF16, stream);
  }
  absl::StatusOr<const void *> wide = converted.widened(w, wType, n * k);
  if (!wide.ok())
    return wide.status();
  return product({dy}, {*wide}, dx, m, k, n, DType::kF32, stream);
}

absl::Status Gemm::linearGradWeight(const float *dy, Activation x, int64_t m,
                                    int64_t n, int64_t k, bool bf16, float *dw,
                                    cudaStream_t stream) {
  if (!bf16) {
    if (x.type != DType::kF32)
      return absl::InvalidArgumentError(
          "an fp32 weight gradient reads fp32 activations");
    return product({dy, true}, {x.data}, dw, n, k, m, DType::kF32, stream);
  }
  Converted dyRounded(stream), xRounded(stream);
  absl::StatusOr<const void *> a = dyRounded.bf16(dy, m * n);
  if (!a.ok())
    return a.status();
  absl::StatusOr<const void *> b =
      x.type == DType::kBF16
          ? absl::StatusOr<const void *>(x.data) // stored rounded
          : xRounded.bf16(static_cast<const float *>(x.data), m * k);
  if (!b.ok())
    return b.status();
  return product({*a, true}, {*b}, dw, n, k, m, DType::kBF16, stream);
}

} // namespace moert::cuda
