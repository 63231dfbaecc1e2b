//===- Experts.cpp - MoE blocks on the device, fused or as a chain --------===//
//
// The fused block is the CPU's fusedExperts (runtime/cpu/FusedExperts.cpp)
// step for step: the router GEMM, top-k, the grouping of ExpertRows.cu, the
// grouped rows gathered once (rounded to bf16 beside bf16 experts), each
// expert's gate and up GEMMs over its rows, the SwiGLU, the down GEMM, and
// the weighted combine in ascending expert order. The experts' row counts
// come to the host once per block, for the GEMMs' sizes; everything else
// stays on the device. The unfused chain (dispatch, expert_mlp, combine)
// runs the same pieces one op at a time.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Experts.h"

#include "runtime/cuda/CheckLaunchShape.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/exec/LaunchAttrs.h"

#include <numeric>
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
absl::StatusOr<const uint8_t *> expertStack(const TensorRef &w, bool bf16,
                                            StreamScratch &scratch,
                                            const DeviceLimits &limits,
                                            cudaStream_t stream) {
  if (w.dtype == DType::kF32 || (bf16 && w.dtype == DType::kBF16))
    return static_cast<const uint8_t *>(w.data);
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
  return reinterpret_cast<const uint8_t *>(wide);
}

/// An MoE block's experts: gate, up and down [E, F, D], [E, F, D], [E, D, F].
struct ExpertWeights {
  const TensorRef &gate, &up, &down;
  /// bf16 GEMMs when all three are bf16 (else fp32, widening as needed).
  bool bf16() const {
    return gate.dtype == DType::kBF16 && up.dtype == DType::kBF16 &&
           down.dtype == DType::kBF16;
  }
};

/// rows [total, d] = each expert's SwiGLU MLP over its rows of `grouped`
/// [total, d] (in the GEMMs' input type), experts in order, expert e taking
/// counts[e] rows.
absl::Status runExperts(const uint8_t *grouped,
                        const std::vector<int64_t> &counts,
                        const ExpertWeights &w, float *rows,
                        CudaContext &context, StreamScratch &scratch,
                        cudaStream_t stream) {
  const DeviceLimits &limits = context.limits;
  int64_t experts = int64_t(counts.size()), f = w.gate.shape[1],
          d = w.gate.shape[2];
  int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  bool bf16 = w.bf16();
  DType inputs = bf16 ? DType::kBF16 : DType::kF32;
  int64_t bytes = bf16 ? 2 : 4;
  absl::StatusOr<const uint8_t *> gate =
      expertStack(w.gate, bf16, scratch, limits, stream);
  absl::StatusOr<const uint8_t *> up =
      expertStack(w.up, bf16, scratch, limits, stream);
  absl::StatusOr<const uint8_t *> down =
      expertStack(w.down, bf16, scratch, limits, stream);
  for (const auto *stack : {&gate, &up, &down})
    if (!stack->ok())
      return stack->status();
  float *gateRows = nullptr, *upRows = nullptr;
  uint8_t *hidden = nullptr; // the down GEMM's input, fp32 or bf16
  for (absl::Status s :
       {scratch.take(total * f, gateRows), scratch.take(total * f, upRows),
        scratch.take(total * f * bytes, hidden)})
    if (!s.ok())
      return s;
  // Expert e's rows start at the sum of the counts before it.
  for (int64_t e = 0, first = 0; e < experts; first += counts[e], ++e) {
    if (counts[e] == 0)
      continue;
    const uint8_t *x = grouped + first * d * bytes;
    if (auto s = context.gemm->matmul(x, *gate + e * f * d * bytes,
                                      gateRows + first * f, counts[e], d, f,
                                      inputs, stream);
        !s.ok())
      return s;
    if (auto s = context.gemm->matmul(x, *up + e * f * d * bytes,
                                      upRows + first * f, counts[e], d, f,
                                      inputs, stream);
        !s.ok())
      return s;
  }
  if (auto s = enqueue("cuda.swiglu_rows", elementwiseShape(total * f), limits,
                       [&](const LaunchShape &shape) {
                         return swigluRows(gateRows, upRows, total * f, bf16,
                                           hidden, shape, stream);
                       });
      !s.ok())
    return s;
  for (int64_t e = 0, first = 0; e < experts; first += counts[e], ++e) {
    if (counts[e] == 0)
      continue;
    if (auto s = context.gemm->matmul(
            hidden + first * f * bytes, *down + e * d * f * bytes,
            rows + first * d, counts[e], f, d, inputs, stream);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

/// Device counts [experts] on the host, for the GEMMs' sizes; an error
/// unless they are non-negative and sum to `rows` (when rows >= 0) — the
/// check the CPU's expert_mlp makes of counts it did not compute.
absl::StatusOr<std::vector<int64_t>> hostCounts(const int64_t *counts,
                                                int64_t experts, int64_t rows,
                                                cudaStream_t stream) {
  std::vector<int64_t> host(experts);
  if (auto s = cudaStatus(cudaMemcpyAsync(host.data(), counts,
                                          experts * sizeof(int64_t),
                                          cudaMemcpyDeviceToHost, stream),
                          "expert row counts");
      !s.ok())
    return s;
  if (auto s = cudaStatus(cudaStreamSynchronize(stream), "expert row counts");
      !s.ok())
    return s;
  int64_t total = 0;
  for (int64_t count : host) {
    if (count < 0)
      return absl::InvalidArgumentError("negative expert row count");
    total += count;
  }
  if (rows >= 0 && total != rows)
    return absl::InvalidArgumentError(
        "expert row counts do not sum to the grouped rows");
  return host;
}

/// The router's top-k and the grouping of its slots by expert.
struct Routing {
  float *weights = nullptr;
  int32_t *indices = nullptr, *slotOfRow = nullptr;
  int64_t *counts = nullptr, *rowOfSlot = nullptr;
};

absl::Status group(const int32_t *indices, int64_t slots, int64_t experts,
                   Routing &r, CudaContext &context, const KernelLaunch &l,
                   DeviceFault *fault, StreamScratch &scratch,
                   cudaStream_t stream) {
  for (absl::Status s :
       {scratch.take(experts, r.counts), scratch.take(slots, r.rowOfSlot)})
    if (!s.ok())
      return s;
  int32_t site = context.site(l);
  return enqueue("cuda.group_rows", rowShape(experts, 256), context.limits,
                 [&](const LaunchShape &shape) {
                   return groupRows(indices, slots, experts, r.counts,
                                    r.slotOfRow, r.rowOfSlot, fault, site,
                                    shape, stream);
                 });
}

} // namespace

absl::Status fusedExpertsForward(const KernelLaunch &l, CudaContext &context,
                                 cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  const TensorRef &x = in[0];
  ExpertWeights w{in[2], in[3], in[4]};
  int64_t tokens = rows(x), d = lastDim(x), experts = w.gate.shape[0],
          k = attr(l, 0), slots = tokens * k;
  float *out = l.results[0].as<float>(), *logits = l.results[1].as<float>();
  const DeviceLimits &limits = context.limits;
  if (auto s = context.gemm->linear(x.as<float>(), tokens, d, in[1].data,
                                    in[1].dtype, experts, logits, stream);
      !s.ok())
    return s;

  StreamScratch scratch(stream);
  Routing r;
  for (absl::Status s :
       {scratch.take(slots, r.weights), scratch.take(slots, r.indices),
        scratch.take(slots, r.slotOfRow)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.router_top_k", elementwiseShape(tokens, 128),
                       limits, [&](const LaunchShape &shape) {
                         return routerTopK(logits, tokens, int(experts), int(k),
                                           attr(l, 1) != 0, r.weights,
                                           r.indices, shape, stream);
                       });
      !s.ok())
    return s;
  if (auto s = group(r.indices, slots, experts, r, context, l, fault, scratch,
                     stream);
      !s.ok())
    return s;
  absl::StatusOr<std::vector<int64_t>> counts =
      hostCounts(r.counts, experts, /*rows=*/-1, stream);
  if (!counts.ok())
    return counts.status();
  int64_t total = std::accumulate(counts->begin(), counts->end(), int64_t(0));

  bool bf16 = w.bf16();
  uint8_t *grouped = nullptr;
  float *expertRows = nullptr;
  for (absl::Status s : {scratch.take(total * d * (bf16 ? 2 : 4), grouped),
                         scratch.take(total * d, expertRows)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.gather_rows", elementwiseShape(total * d), limits,
                       [&](const LaunchShape &shape) {
                         return gatherRows(x.as<float>(), r.slotOfRow, total,
                                           d, k, bf16, grouped, shape, stream);
                       });
      !s.ok())
    return s;
  if (auto s = runExperts(grouped, *counts, w, expertRows, context, scratch,
                          stream);
      !s.ok())
    return s;
  return enqueue("cuda.combine_rows", elementwiseShape(tokens * d), limits,
                 [&](const LaunchShape &shape) {
                   return combineRows(expertRows, r.rowOfSlot, r.weights,
                                      tokens, k, d, /*inSlotOrder=*/false, out,
                                      shape, stream);
                 });
}

absl::Status dispatchForward(const KernelLaunch &l, CudaContext &context,
                             cudaStream_t stream, DeviceFault *fault) {
  const TensorRef &x = l.operands[0], &indices = l.operands[1];
  int64_t tokens = rows(x), d = lastDim(x), k = lastDim(indices),
          experts = attr(l, 0), slots = tokens * k;
  StreamScratch scratch(stream);
  Routing r;
  r.slotOfRow = l.results[2].as<int32_t>();
  if (auto s = group(indices.as<int32_t>(), slots, experts, r, context, l,
                     fault, scratch, stream);
      !s.ok())
    return s;
  // The counts are a result; the grouped rows past a faulty index's would be
  // unset, so they are gathered only once the counts are known good.
  if (auto s = cudaStatus(cudaMemcpyAsync(l.results[1].data, r.counts,
                                          experts * sizeof(int64_t),
                                          cudaMemcpyDeviceToDevice, stream),
                          "expert row counts");
      !s.ok())
    return s;
  absl::StatusOr<std::vector<int64_t>> counts =
      hostCounts(r.counts, experts, -1, stream);
  if (!counts.ok())
    return counts.status();
  int64_t total = std::accumulate(counts->begin(), counts->end(), int64_t(0));
  return enqueue("cuda.gather_rows", elementwiseShape(total * d),
                 context.limits, [&](const LaunchShape &shape) {
                   return gatherRows(x.as<float>(), r.slotOfRow, total, d, k,
                                     false, l.results[0].data, shape, stream);
                 });
}

absl::Status expertMlpForward(const KernelLaunch &l, CudaContext &context,
                              cudaStream_t stream) {
  const TensorRef &grouped = l.operands[0];
  ExpertWeights w{l.operands[2], l.operands[3], l.operands[4]};
  int64_t total = grouped.shape[0], d = lastDim(grouped);
  absl::StatusOr<std::vector<int64_t>> counts = hostCounts(
      l.operands[1].as<int64_t>(), w.gate.shape[0], total, stream);
  if (!counts.ok())
    return counts.status();
  StreamScratch scratch(stream);
  const uint8_t *inputs = static_cast<const uint8_t *>(grouped.data);
  if (w.bf16()) { // the rows rounded to bf16 once, for every expert
    uint16_t *rounded = nullptr;
    if (auto s = scratch.take(total * d, rounded); !s.ok())
      return s;
    if (auto s = enqueue("cuda.round_to_bf16", elementwiseShape(total * d),
                         context.limits, [&](const LaunchShape &shape) {
                           return roundToBf16(grouped.as<float>(), total * d,
                                              rounded, shape, stream);
                         });
        !s.ok())
      return s;
    inputs = reinterpret_cast<const uint8_t *>(rounded);
  }
  return runExperts(inputs, *counts, w, l.results[0].as<float>(), context,
                    scratch, stream);
}

absl::Status combineForward(const KernelLaunch &l, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault) {
  const TensorRef &y = l.operands[0], &weights = l.operands[1];
  int64_t tokens = rows(weights), k = lastDim(weights), d = lastDim(y),
          slots = tokens * k;
  StreamScratch scratch(stream);
  int64_t *rowOfSlot = nullptr;
  if (auto s = scratch.take(slots, rowOfSlot); !s.ok())
    return s;
  int32_t site = context.site(l);
  if (auto s = enqueue("cuda.invert_slots", elementwiseShape(slots),
                       context.limits, [&](const LaunchShape &shape) {
                         return invertSlots(l.operands[2].as<int32_t>(), slots,
                                            rowOfSlot, fault, site, shape,
                                            stream);
                       });
      !s.ok())
    return s;
  return enqueue("cuda.combine", elementwiseShape(tokens * d), context.limits,
                 [&](const LaunchShape &shape) {
                   return combineRows(y.as<float>(), rowOfSlot,
                                      weights.as<float>(), tokens, k, d,
                                      /*inSlotOrder=*/true,
                                      l.results[0].as<float>(), shape, stream);
                 });
}

} // namespace moert::cuda
