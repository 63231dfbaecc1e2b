//===- GroupedGemm.cpp - the experts' GEMMs in one cuBLAS call ------------===//
//
// Row-major c[m, n] = a[m, k] b[n, k]^T is column-major c^T[n, m] = op(b)
// a^T: cuBLAS's A is b (transposed, leading dimension k), its B is a
// (leading dimension k), C is c (leading dimension n). Sizes, scalars and
// group sizes are host arrays; the operand pointers are device arrays.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/GroupedGemm.h"

#include "runtime/cuda/CudaStatus.h"

#include "absl/strings/str_cat.h"

#include <climits>
#include <map>

namespace moert::cuda {

absl::StatusOr<std::unique_ptr<GroupedGemm>> GroupedGemm::create(bool tf32) {
  cublasHandle_t handle;
  if (cublasStatus_t status = cublasCreate(&handle);
      status != CUBLAS_STATUS_SUCCESS)
    return absl::InternalError(
        absl::StrCat("cublasCreate: ", cublasGetStatusString(status)));
  cudaEvent_t copied;
  if (auto s =
          cudaStatus(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming),
                     "grouped GEMM event");
      !s.ok()) {
    cublasDestroy(handle);
    return s;
  }
  return std::unique_ptr<GroupedGemm>(new GroupedGemm(handle, copied, tf32));
}

GroupedGemm::~GroupedGemm() {
  cudaEventSynchronize(copied_);
  cudaEventDestroy(copied_);
  cudaFreeHost(const_cast<void **>(staging_));
  cublasDestroy(handle_);
}

absl::Status GroupedGemm::stage(const std::vector<const void *> &pointers,
                                void **device, cudaStream_t stream) {
  // The previous call's copy must have read the staging buffer.
  if (auto s = cudaStatus(cudaEventSynchronize(copied_), "grouped GEMM");
      !s.ok())
    return s;
  if (pointers.size() > stagingCount_) {
    cudaFreeHost(const_cast<void **>(staging_));
    staging_ = nullptr;
    stagingCount_ = 0;
    void *pinned = nullptr;
    if (auto s = cudaStatus(
            cudaMallocHost(&pinned, pointers.size() * sizeof(void *)),
            "grouped GEMM staging");
        !s.ok())
      return s;
    staging_ = static_cast<const void **>(pinned);
    stagingCount_ = pointers.size();
  }
  std::copy(pointers.begin(), pointers.end(), staging_);
  if (auto s = cudaStatus(cudaMemcpyAsync(device, staging_,
                                          pointers.size() * sizeof(void *),
                                          cudaMemcpyHostToDevice, stream),
                          "grouped GEMM pointers");
      !s.ok())
    return s;
  return cudaStatus(cudaEventRecord(copied_, stream), "grouped GEMM");
}

absl::Status GroupedGemm::run(const std::vector<Problem> &problems, int64_t n,
                              int64_t k, DType inputs, StreamScratch &scratch,
                              cudaStream_t stream) {
  if (refused(inputs))
    return absl::UnimplementedError("grouped GEMM refused");
  if (problems.empty())
    return absl::OkStatus();
  // Problems of one m side by side: groups in order of first appearance.
  std::map<int64_t, std::vector<const Problem *>> byRows;
  std::vector<int64_t> order;
  for (const Problem &problem : problems) {
    if (problem.m > INT_MAX || n > INT_MAX || k > INT_MAX)
      return absl::UnimplementedError("grouped GEMM sizes past int");
    auto [at, added] = byRows.try_emplace(problem.m);
    if (added)
      order.push_back(problem.m);
    at->second.push_back(&problem);
  }
  std::vector<const void *> a, b;
  std::vector<void *> c;
  std::vector<int> m, ns, ks, lda, ldb, ldc, sizes;
  std::vector<cublasOperation_t> transA, transB;
  std::vector<float> alpha, beta;
  for (int64_t rows : order) {
    for (const Problem *problem : byRows[rows]) {
      a.push_back(problem->b); // cuBLAS's A: the weight
      b.push_back(problem->a); // its B: the rows
      c.push_back(problem->c);
    }
    transA.push_back(CUBLAS_OP_T);
    transB.push_back(CUBLAS_OP_N);
    m.push_back(int(n));
    ns.push_back(int(rows));
    ks.push_back(int(k));
    lda.push_back(int(k));
    ldb.push_back(int(k));
    ldc.push_back(int(n));
    sizes.push_back(int(byRows[rows].size()));
    alpha.push_back(1.0f);
    beta.push_back(0.0f);
  }
  size_t count = a.size();
  void **pointers = nullptr; // A, then B, then C
  if (auto s = scratch.take(int64_t(3 * count), pointers); !s.ok())
    return s;
  std::vector<const void *> host(a);
  host.insert(host.end(), b.begin(), b.end());
  host.insert(host.end(), c.begin(), c.end());
  if (auto s = stage(host, pointers, stream); !s.ok())
    return s;
  cudaDataType_t type = inputs == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t compute =
      inputs == DType::kF32 && tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32
                                     : CUBLAS_COMPUTE_32F;
  if (cublasStatus_t status = cublasSetStream(handle_, stream);
      status != CUBLAS_STATUS_SUCCESS)
    return absl::InternalError(
        absl::StrCat("grouped GEMM stream: ", cublasGetStatusString(status)));
  cublasStatus_t status = cublasGemmGroupedBatchedEx(
      handle_, transA.data(), transB.data(), m.data(), ns.data(), ks.data(),
      alpha.data(), const_cast<const void *const *>(pointers), type,
      lda.data(), const_cast<const void *const *>(pointers + count), type,
      ldb.data(), beta.data(), pointers + 2 * count, CUDA_R_32F, ldc.data(),
      int(order.size()), sizes.data(), compute);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED ||
      status == CUBLAS_STATUS_INVALID_VALUE) {
    (inputs == DType::kBF16 ? refusedBf16_ : refusedF32_) = true;
    return absl::UnimplementedError(absl::StrCat(
        "grouped GEMM refused: ", cublasGetStatusString(status)));
  }
  if (status != CUBLAS_STATUS_SUCCESS)
    return absl::InternalError(
        absl::StrCat("grouped GEMM: ", cublasGetStatusString(status)));
  return absl::OkStatus();
}

} // namespace moert::cuda
