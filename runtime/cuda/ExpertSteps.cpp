//===- ExpertSteps.cpp - the steps MoE blocks are made of, on the device --===//
//
// The experts' GEMMs run as cuBLAS's grouped GEMM (or one cuBLASLt call
// per expert) over their grouped rows, the experts' row counts brought to
// the host once per block for their sizes; or, in a fused forward with
// bf16 experts, as the tiled GEMMs of kernels/ExpertGemm.cu, which read the
// counts on the device. Everything else stays on the device.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/ExpertSteps.h"

#include "runtime/exec/FusedBlockOperands.h"
#include "runtime/exec/LaunchAttrs.h"

#include <numeric>
#include <tuple>

namespace moert::cuda {
using namespace launch_attrs;

namespace {

/// An expert stack [E, rows, cols] as GEMM inputs: itself when fp32 or
/// (with `bf16`) bf16, else widened to fp32 in `scratch`.
absl::StatusOr<const uint8_t *> expertStack(const TensorRef &w, bool bf16,
                                            CudaContext &context,
                                            StreamScratch &scratch,
                                            cudaStream_t stream) {
  if (w.dtype == DType::kF32 || (bf16 && w.dtype == DType::kBF16))
    return static_cast<const uint8_t *>(w.data);
  float *wide = nullptr;
  int64_t n = w.numElements();
  if (auto s = scratch.take(n, wide); !s.ok())
    return s;
  if (auto s = enqueue("cuda.widen", elementwiseShape(n), context.limits,
                       [&](const LaunchShape &shape) {
                         return widen(w.data, w.dtype, n, wide, shape, stream);
                       });
      !s.ok())
    return s;
  return reinterpret_cast<const uint8_t *>(wide);
}

struct Stacks {
  const uint8_t *gate, *up, *down;
};
absl::StatusOr<Stacks> stacks(const ExpertWeights &w, CudaContext &context,
                              StreamScratch &scratch, cudaStream_t stream) {
  bool bf16 = w.bf16();
  auto gate = expertStack(w.gate, bf16, context, scratch, stream);
  auto up = expertStack(w.up, bf16, context, scratch, stream);
  auto down = expertStack(w.down, bf16, context, scratch, stream);
  for (const auto *stack : {&gate, &up, &down})
    if (!stack->ok())
      return stack->status();
  return Stacks{*gate, *up, *down};
}

} // namespace

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

absl::Status group(const int32_t *indices, int64_t slots, int64_t experts,
                   const SkippedTokens &skip, Routing &r, CudaContext &context,
                   int32_t site, DeviceFault *fault, StreamScratch &scratch,
                   cudaStream_t stream, bool countsOnHost) {
  for (absl::Status s :
       {scratch.take(experts, r.counts), scratch.take(slots, r.rowOfSlot)})
    if (!s.ok())
      return s;
  if (!r.slotOfRow)
    if (auto s = scratch.take(slots, r.slotOfRow); !s.ok())
      return s;
  if (!countsOnHost) // the rows past the grouped ones read -1
    if (auto s = cudaStatus(
            cudaMemsetAsync(r.slotOfRow, 0xff, slots * sizeof(int32_t), stream),
            "grouped rows");
        !s.ok())
      return s;
  if (auto s = enqueue("cuda.group_rows", rowShape(experts, 256),
                       context.limits,
                       [&](const LaunchShape &shape) {
                         return groupRows(indices, slots, experts, skip,
                                          r.counts, r.slotOfRow, r.rowOfSlot,
                                          fault, site, shape, stream);
                       });
      !s.ok())
    return s;
  if (!countsOnHost) {
    r.total = slots;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<int64_t>> counts =
      hostCounts(r.counts, experts, /*rows=*/-1, stream);
  if (!counts.ok())
    return counts.status();
  r.hostCounts = std::move(*counts);
  r.total = std::accumulate(r.hostCounts.begin(), r.hostCounts.end(),
                            int64_t(0));
  return absl::OkStatus();
}

absl::Status route(const float *logits, int64_t tokens, int64_t experts,
                   int64_t k, bool normalize, const SkippedTokens &skip,
                   Routing &r, CudaContext &context, int32_t site,
                   DeviceFault *fault, StreamScratch &scratch,
                   cudaStream_t stream, bool countsOnHost) {
  int64_t slots = tokens * k;
  for (absl::Status s :
       {scratch.take(slots, r.weights), scratch.take(slots, r.indices)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.router_top_k", elementwiseShape(tokens, 128),
                       context.limits, [&](const LaunchShape &shape) {
                         return routerTopK(logits, tokens, int(experts), int(k),
                                           normalize, r.weights, r.indices,
                                           shape, stream);
                       });
      !s.ok())
    return s;
  return group(r.indices, slots, experts, skip, r, context, site, fault,
               scratch, stream, countsOnHost);
}

absl::StatusOr<SkippedTokens> skippedTokens(const KernelLaunch &launch,
                                            int labels, int64_t k,
                                            CudaContext &context,
                                            StreamScratch &scratch,
                                            cudaStream_t stream) {
  SkippedTokens skip;
  if (labels < 0)
    return skip;
  const TensorRef &ids = launch.operands[labels];
  skip.seq = ids.shape.back();
  skip.k = k;
  int64_t sequences = ids.numElements() / skip.seq;
  int64_t *last = nullptr;
  if (auto s = scratch.take(sequences, last); !s.ok())
    return s;
  if (auto s = enqueue("cuda.last_labelled", elementwiseShape(sequences, 128),
                       context.limits,
                       [&](const LaunchShape &shape) {
                         return lastLabelled(ids.as<int32_t>(), sequences,
                                             skip.seq, attr(launch, 3), last,
                                             shape, stream);
                       });
      !s.ok())
    return s;
  skip.lastLabelled = last;
  return skip;
}

absl::StatusOr<const uint8_t *> asInputs(const float *x, int64_t n, bool bf16,
                                         CudaContext &context,
                                         StreamScratch &scratch,
                                         cudaStream_t stream) {
  if (!bf16)
    return reinterpret_cast<const uint8_t *>(x);
  uint16_t *rounded = nullptr;
  if (auto s = scratch.take(n, rounded); !s.ok())
    return s;
  if (auto s = enqueue("cuda.round_to_bf16", elementwiseShape(n),
                       context.limits, [&](const LaunchShape &shape) {
                         return roundToBf16(x, n, rounded, shape, stream);
                       });
      !s.ok())
    return s;
  return reinterpret_cast<const uint8_t *>(rounded);
}

absl::StatusOr<GroupedInput> groupedInput(const KernelLaunch &launch,
                                          const ExpertWeights &w,
                                          CudaContext &context,
                                          StreamScratch &scratch,
                                          cudaStream_t stream) {
  const TensorRef &grouped = launch.operands[0];
  int64_t total = grouped.shape[0];
  absl::StatusOr<std::vector<int64_t>> counts = hostCounts(
      launch.operands[1].as<int64_t>(), w.experts(), total, stream);
  if (!counts.ok())
    return counts.status();
  absl::StatusOr<const uint8_t *> rows =
      asInputs(grouped.as<float>(), total * lastDim(grouped), w.bf16(), context,
               scratch, stream);
  if (!rows.ok())
    return rows.status();
  return GroupedInput{std::move(*counts), *rows};
}

namespace {

/// One GEMM per expert with rows, y_e[n_e, n] = x_e[n_e, k] w_e[n, k]^T
/// for each weight stack of `stacks` (with its output), in one grouped
/// cuBLAS call where it takes the types, else one cuBLASLt call each.
struct ExpertProducts {
  const uint8_t *rows;                 // the grouped rows [total, k]
  std::vector<std::pair<const uint8_t *, float *>> stacks; // w, y
  int64_t n, k;
};
absl::Status runProducts(const ExpertProducts &p,
                         const std::vector<int64_t> &counts, DType inputs,
                         CudaContext &context, StreamScratch &scratch,
                         cudaStream_t stream) {
  int64_t bytes = inputs == DType::kBF16 ? 2 : 4;
  std::vector<GroupedGemm::Problem> problems;
  for (int64_t e = 0, first = 0; e < int64_t(counts.size());
       first += counts[e], ++e)
    if (counts[e] > 0)
      for (auto [w, y] : p.stacks)
        problems.push_back({p.rows + first * p.k * bytes,
                            w + e * p.n * p.k * bytes, y + first * p.n,
                            counts[e]});
  if (context.grouped && !context.grouped->refused(inputs)) {
    absl::Status status =
        context.grouped->run(problems, p.n, p.k, inputs, scratch, stream);
    if (status.code() != absl::StatusCode::kUnimplemented)
      return status;
  }
  for (const GroupedGemm::Problem &problem : problems)
    if (auto s = context.gemm->matmul(problem.a, problem.b, problem.c,
                                      problem.m, p.k, p.n, inputs, stream);
        !s.ok())
      return s;
  return absl::OkStatus();
}

/// Each expert's gate and up GEMMs over its rows, into gateRows/upRows.
absl::Status gateAndUp(const uint8_t *grouped,
                       const std::vector<int64_t> &counts,
                       const ExpertWeights &w, const Stacks &stack,
                       float *gateRows, float *upRows, CudaContext &context,
                       StreamScratch &scratch, cudaStream_t stream) {
  return runProducts({grouped, {{stack.gate, gateRows}, {stack.up, upRows}},
                      w.f(), w.d()},
                     counts, w.bf16() ? DType::kBF16 : DType::kF32, context,
                     scratch, stream);
}

} // namespace

absl::Status expertsForward(const uint8_t *grouped,
                            const std::vector<int64_t> &counts,
                            const ExpertWeights &w, float *rows,
                            CudaContext &context, StreamScratch &scratch,
                            cudaStream_t stream, KeptRows kept) {
  int64_t f = w.f(), d = w.d();
  int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  bool bf16 = w.bf16();
  DType inputs = bf16 ? DType::kBF16 : DType::kF32;
  int64_t bytes = bf16 ? 2 : 4;
  absl::StatusOr<Stacks> stack = stacks(w, context, scratch, stream);
  if (!stack.ok())
    return stack.status();
  float *gateRows = kept.gate, *upRows = kept.up;
  uint8_t *hidden = nullptr; // the down GEMM's input, fp32 or bf16
  if (!gateRows)
    for (absl::Status s :
         {scratch.take(total * f, gateRows), scratch.take(total * f, upRows)})
      if (!s.ok())
        return s;
  if (auto s = scratch.take(total * f * bytes, hidden); !s.ok())
    return s;
  if (auto s = gateAndUp(grouped, counts, w, *stack, gateRows, upRows, context,
                         scratch, stream);
      !s.ok())
    return s;
  if (auto s = enqueue("cuda.swiglu_rows", elementwiseShape(total * f),
                       context.limits, [&](const LaunchShape &shape) {
                         return swigluRows(gateRows, upRows, total * f, bf16,
                                           hidden, shape, stream);
                       });
      !s.ok())
    return s;
  return runProducts({hidden, {{stack->down, rows}}, d, f}, counts, inputs,
                     context, scratch, stream);
}

bool tiledExperts(const ExpertWeights &w, int64_t slots,
                  const CudaContext &context) {
  auto aligned = [](const TensorRef &t) {
    return reinterpret_cast<uintptr_t>(t.data) % 16 == 0;
  };
  bool fits = w.bf16() && w.d() % 8 == 0 && w.f() % 8 == 0 &&
              aligned(w.gate) && aligned(w.up) && aligned(w.down);
  switch (context.expertGemms) {
  case ExpertGemms::kTiled:
    return fits;
  case ExpertGemms::kCublas:
    return false;
  default:
    return fits && slots <= kTiledRowsPerExpert * w.experts();
  }
}

absl::Status tiledExpertsForward(const uint8_t *grouped, const int64_t *counts,
                                 int64_t rowsBound, const ExpertWeights &w,
                                 float *rows, CudaContext &context,
                                 StreamScratch &scratch, cudaStream_t stream,
                                 KeptRows kept) {
  int64_t f = w.f(), d = w.d(), experts = w.experts();
  uint16_t *hidden = nullptr; // the SwiGLU, bf16: the down GEMM's input
  if (auto s = scratch.take(rowsBound * f, hidden); !s.ok())
    return s;
  const auto *x = reinterpret_cast<const uint16_t *>(grouped);
  if (auto s = enqueue("cuda.expert_gate_up",
                       expertGemmShape(rowsBound, experts, f), context.limits,
                       [&](const LaunchShape &shape) {
                         return expertGateUp(x, counts, experts, d, f,
                                             w.gate.as<uint16_t>(),
                                             w.up.as<uint16_t>(), hidden,
                                             kept.gate, kept.up, shape, stream);
                       });
      !s.ok())
    return s;
  return enqueue("cuda.expert_down", expertGemmShape(rowsBound, experts, d),
                 context.limits, [&](const LaunchShape &shape) {
                   return expertDown(hidden, counts, experts, f, d,
                                     w.down.as<uint16_t>(), rows, shape,
                                     stream);
                 });
}

absl::Status expertsBackward(const uint8_t *grouped, const float *dRows,
                             const std::vector<int64_t> &counts,
                             const ExpertWeights &w, const float *weights,
                             const int32_t *slotOfRow, KeptRows saved,
                             const ExpertGrads &grads, CudaContext &context,
                             StreamScratch &scratch, cudaStream_t stream) {
  int64_t f = w.f(), d = w.d(), experts = w.experts();
  int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  bool bf16 = w.bf16();
  DType inputs = bf16 ? DType::kBF16 : DType::kF32;
  int64_t bytes = bf16 ? 2 : 4;
  // Experts without rows keep zero gradients.
  for (float *dw : {grads.dGate, grads.dUp, grads.dDown})
    if (auto s = cudaStatus(cudaMemsetAsync(dw, 0,
                                            experts * f * d * sizeof(float),
                                            stream),
                            "expert gradients");
        !s.ok())
      return s;
  absl::StatusOr<Stacks> stack = stacks(w, context, scratch, stream);
  if (!stack.ok())
    return stack.status();
  float *gateRows = saved.gate, *upRows = saved.up, *g = nullptr;
  uint8_t *actW = nullptr, *dGateRows = nullptr, *dUpRows = nullptr;
  for (absl::Status s :
       {scratch.take(total * f, g), scratch.take(total * f * bytes, actW),
        scratch.take(total * f * bytes, dGateRows),
        scratch.take(total * f * bytes, dUpRows)})
    if (!s.ok())
      return s;
  if (!gateRows) {
    for (absl::Status s :
         {scratch.take(total * f, gateRows), scratch.take(total * f, upRows)})
      if (!s.ok())
        return s;
    if (auto s = gateAndUp(grouped, counts, w, *stack, gateRows, upRows,
                           context, scratch, stream);
        !s.ok())
      return s;
  }
  absl::StatusOr<const uint8_t *> dIn =
      asInputs(dRows, total * d, bf16, context, scratch, stream);
  if (!dIn.ok())
    return dIn.status();
  // g = each row's output gradient times the down weight [D, F].
  for (int64_t e = 0, first = 0; e < experts; first += counts[e], ++e)
    if (counts[e] > 0)
      if (auto s = context.gemm->product(
              {*dIn + first * d * bytes}, {stack->down + e * d * f * bytes},
              g + first * f, counts[e], f, d, inputs, stream);
          !s.ok())
        return s;
  if (total > 0)
    if (auto s = enqueue("cuda.swiglu_rows_grad", rowShape(total, 256),
                         context.limits, [&](const LaunchShape &shape) {
                           return swigluRowsGrad(
                               gateRows, upRows, g, weights, slotOfRow, f, bf16,
                               actW, dGateRows, dUpRows, grads.dweights, shape,
                               stream);
                         });
        !s.ok())
      return s;
  for (int64_t e = 0, first = 0; e < experts; first += counts[e], ++e) {
    int64_t n = counts[e];
    if (n == 0)
      continue;
    const uint8_t *x = grouped + first * d * bytes,
                  *dgate = dGateRows + first * f * bytes,
                  *dup = dUpRows + first * f * bytes;
    // dW2 [D, F] = dRows^T (w act); dW1, dW3 [F, D] = dgate^T x, dup^T x.
    for (auto [a, b, out, m, cols] :
         {std::tuple{*dIn + first * d * bytes,
                     static_cast<const uint8_t *>(actW + first * f * bytes),
                     grads.dDown + e * d * f, d, f},
          std::tuple{dgate, x, grads.dGate + e * f * d, f, d},
          std::tuple{dup, x, grads.dUp + e * f * d, f, d}})
      if (auto s = context.gemm->product({a, true}, {b}, out, m, cols, n,
                                         inputs, stream);
          !s.ok())
        return s;
    // dGrouped [n, D] = dgate W1 + dup W3.
    if (auto s = context.gemm->product({dgate}, {stack->gate + e * f * d * bytes},
                                       grads.dGrouped + first * d, n, d, f,
                                       inputs, stream);
        !s.ok())
      return s;
    if (auto s = context.gemm->product({dup}, {stack->up + e * f * d * bytes},
                                       grads.dGrouped + first * d, n, d, f,
                                       inputs, stream, /*accumulate=*/true);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

} // namespace moert::cuda
