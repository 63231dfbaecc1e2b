//===- FusedExperts.cpp - a whole MoE block on the device -----------------===//
//
// The CPU's fusedExperts (runtime/cpu/FusedExperts.cpp) step for step: the
// router GEMM, top-k, the grouping of ExpertRows.cu, the grouped rows
// gathered once (rounded to bf16 beside bf16 experts), each expert's gate
// and up GEMMs over its rows, the SwiGLU, the down GEMM, and the weighted
// combine in ascending expert order. The experts' row counts come to the
// host once per block, for the GEMMs' sizes; everything else stays on the
// device.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/FusedExperts.h"

#include "runtime/cuda/CheckLaunchShape.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/exec/LaunchAttrs.h"

#include <vector>

namespace moert::cuda {
using namespace launch_attrs;

namespace {

/// Checks `shape` and enqueues; a failure names the kernel.
template <typename Enqueue>
absl::Status enqueue(const char *kernel, const LaunchShape &shape,
                     const DeviceLimits &limits, Enqueue body) {
  if (auto s = checkLaunchShape(shape, kernel, limits); !s.ok())
    return s;
  return cudaStatus(body(shape), kernel);
}

/// Each expert's stacked weight [E, rows, cols] as GEMM inputs: itself when
/// fp32 or (with `bf16`) bf16, else widened to fp32 in `scratch`.
absl::StatusOr<const void *> expertStack(const TensorRef &w, bool bf16,
                                         StreamScratch &scratch,
                                         const DeviceLimits &limits,
                                         cudaStream_t stream) {
  if (w.dtype == DType::kF32 || (bf16 && w.dtype == DType::kBF16))
    return w.data;
  float *wide = nullptr;
  int64_t n = w.numElements();
  if (auto s = scratch.take(n, wide); !s.ok())
    return s;
  if (auto s = enqueue("cuda.widen", elementwiseShape(n), limits,
                       [&](const LaunchShape &shape) {
                         return widen(w.data, w.dtype, n, wide, shape, stream);
                       });
      !s.ok())
    return s;
  return static_cast<const void *>(wide);
}

} // namespace

absl::Status fusedExpertsForward(const KernelLaunch &l, CudaContext &context,
                                 cudaStream_t stream) {
  const auto &in = l.operands;
  const TensorRef &x = in[0], &gate = in[2], &up = in[3], &down = in[4];
  int64_t tokens = rows(x), d = lastDim(x), experts = gate.shape[0],
          f = gate.shape[1], k = attr(l, 0), slots = tokens * k;
  float *out = l.results[0].as<float>(), *logits = l.results[1].as<float>();
  const DeviceLimits &limits = context.limits;
  if (auto s = context.gemm->linear(x.as<float>(), tokens, d, in[1].data,
                                    in[1].dtype, experts, logits, stream);
      !s.ok())
    return s;

  StreamScratch scratch(stream);
  float *weights = nullptr;
  int32_t *indices = nullptr, *slotOfRow = nullptr;
  int64_t *counts = nullptr, *rowOfSlot = nullptr;
  for (absl::Status s :
       {scratch.take(slots, weights), scratch.take(slots, indices),
        scratch.take(experts, counts), scratch.take(slots, slotOfRow),
        scratch.take(slots, rowOfSlot)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.router_top_k", elementwiseShape(tokens, 128),
                       limits, [&](const LaunchShape &shape) {
                         return routerTopK(logits, tokens, int(experts), int(k),
                                           attr(l, 1) != 0, weights, indices,
                                           shape, stream);
                       });
      !s.ok())
    return s;
  if (auto s = enqueue("cuda.group_rows", rowShape(experts, 256), limits,
                       [&](const LaunchShape &shape) {
                         return groupRows(indices, slots, experts, counts,
                                          slotOfRow, rowOfSlot, shape, stream);
                       });
      !s.ok())
    return s;
  std::vector<int64_t> hostCounts(experts);
  if (auto s = cudaStatus(cudaMemcpyAsync(hostCounts.data(), counts,
                                          experts * sizeof(int64_t),
                                          cudaMemcpyDeviceToHost, stream),
                          "expert row counts");
      !s.ok())
    return s;
  if (auto s = cudaStatus(cudaStreamSynchronize(stream), "expert row counts");
      !s.ok())
    return s;

  bool bf16 = gate.dtype == DType::kBF16 && up.dtype == DType::kBF16 &&
              down.dtype == DType::kBF16;
  DType inputs = bf16 ? DType::kBF16 : DType::kF32;
  size_t inputBytes = bf16 ? 2 : 4;
  absl::StatusOr<const void *> gateW =
      expertStack(gate, bf16, scratch, limits, stream);
  absl::StatusOr<const void *> upW = expertStack(up, bf16, scratch, limits, stream);
  absl::StatusOr<const void *> downW =
      expertStack(down, bf16, scratch, limits, stream);
  for (const auto *w : {&gateW, &upW, &downW})
    if (!w->ok())
      return w->status();

  uint8_t *grouped = nullptr, *hidden = nullptr; // fp32 or bf16 rows
  float *gateRows = nullptr, *upRows = nullptr, *downRows = nullptr;
  for (absl::Status s :
       {scratch.take(slots * d * int64_t(inputBytes), grouped),
        scratch.take(slots * f, gateRows), scratch.take(slots * f, upRows),
        scratch.take(slots * f * int64_t(inputBytes), hidden),
        scratch.take(slots * d, downRows)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.gather_rows", elementwiseShape(slots * d), limits,
                       [&](const LaunchShape &shape) {
                         return gatherRows(x.as<float>(), slotOfRow, slots, d,
                                           k, bf16, grouped, shape, stream);
                       });
      !s.ok())
    return s;
  // Expert e's rows start at the sum of the counts before it.
  auto at = [](const void *base, int64_t offset, size_t bytes) {
    return static_cast<const uint8_t *>(base) + offset * int64_t(bytes);
  };
  for (int64_t e = 0, first = 0; e < experts; first += hostCounts[e], ++e) {
    int64_t n = hostCounts[e];
    if (n == 0)
      continue;
    const void *xe = at(grouped, first * d, inputBytes);
    if (auto s = context.gemm->matmul(xe, at(*gateW, e * f * d, inputBytes),
                                      gateRows + first * f, n, d, f, inputs,
                                      stream);
        !s.ok())
      return s;
    if (auto s = context.gemm->matmul(xe, at(*upW, e * f * d, inputBytes),
                                      upRows + first * f, n, d, f, inputs,
                                      stream);
        !s.ok())
      return s;
  }
  if (auto s = enqueue("cuda.swiglu_rows", elementwiseShape(slots * f), limits,
                       [&](const LaunchShape &shape) {
                         return swigluRows(gateRows, upRows, slots * f, bf16,
                                           hidden, shape, stream);
                       });
      !s.ok())
    return s;
  for (int64_t e = 0, first = 0; e < experts; first += hostCounts[e], ++e) {
    int64_t n = hostCounts[e];
    if (n == 0)
      continue;
    if (auto s = context.gemm->matmul(
            at(hidden, first * f, inputBytes), at(*downW, e * d * f, inputBytes),
            downRows + first * d, n, f, d, inputs, stream);
        !s.ok())
      return s;
  }
  return enqueue("cuda.combine_rows", elementwiseShape(tokens * d), limits,
                 [&](const LaunchShape &shape) {
                   return combineRows(downRows, rowOfSlot, weights, tokens, k,
                                      d, out, shape, stream);
                 });
}

} // namespace moert::cuda
