//===- Experts.cpp - MoE blocks on the device, fused or as a chain --------===//
//
// The fused block is the CPU's fusedExperts (runtime/cpu/FusedExperts.cpp)
// step for step: the router GEMM, top-k, the grouping of ExpertRows.cu
// (leaving out the tokens a training step skips), the grouped rows gathered
// once (rounded to bf16 beside bf16 experts), the experts' SwiGLU MLPs, and
// the weighted combine in ascending expert order. bf16 experts of a small
// batch run as the tiled GEMMs (ExpertSteps.h: tiledExperts), with the
// SwiGLU in the gate/up GEMM and no round trip to the host. The unfused chain
// (dispatch, expert_mlp, combine) runs the same steps one op at a time.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Experts.h"

#include "runtime/cuda/ExpertSteps.h"
#include "runtime/exec/FusedBlockOperands.h"
#include "runtime/exec/LaunchAttrs.h"

namespace moert::cuda {
using namespace launch_attrs;

absl::Status fusedExpertsForward(const KernelLaunch &l, CudaContext &context,
                                 cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  const TensorRef &x = in[0];
  ExpertWeights w{in[2], in[3], in[4]};
  int64_t tokens = rows(x), d = lastDim(x), experts = w.experts(),
          k = attr(l, 0);
  float *out = l.results[0].as<float>(), *logits = l.results[1].as<float>();
  if (auto s = context.gemm->linear(x.as<float>(), tokens, d, in[1].data,
                                    in[1].dtype, experts, logits, stream);
      !s.ok())
    return s;
  StreamScratch scratch(stream);
  absl::StatusOr<SkippedTokens> skip = skippedTokens(
      l, FusedBlockOperands(l).labels, k, context, scratch, stream);
  if (!skip.ok())
    return skip.status();
  // The tiled GEMMs read the counts on the device: the rows are sized by
  // their bound, the token copies, and nothing comes back to the host.
  bool tiled = tiledExperts(w, tokens * k, context);
  Routing r;
  if (auto s = route(logits, tokens, experts, k, attr(l, 1) != 0, *skip, r,
                     context, context.site(l), fault, scratch, stream,
                     /*countsOnHost=*/!tiled);
      !s.ok())
    return s;
  bool bf16 = w.bf16();
  uint8_t *grouped = nullptr;
  float *expertRows = nullptr;
  for (absl::Status s : {scratch.take(r.total * d * (bf16 ? 2 : 4), grouped),
                         scratch.take(r.total * d, expertRows)})
    if (!s.ok())
      return s;
  if (auto s = enqueue("cuda.gather_rows", elementwiseShape(r.total * d),
                       context.limits, [&](const LaunchShape &shape) {
                         return gatherRows(x.as<float>(), r.slotOfRow, r.total,
                                           d, k, bf16, grouped, shape, stream);
                       });
      !s.ok())
    return s;
  KeptRows kept; // FusedExpertsTrain: the gate and up rows are results
  if (l.results.size() == 4)
    kept = {l.results[2].as<float>(), l.results[3].as<float>()};
  if (auto s = tiled ? tiledExpertsForward(grouped, r.counts, r.total, w,
                                           expertRows, context, scratch,
                                           stream, kept)
                    : expertsForward(grouped, r.hostCounts, w, expertRows,
                                     context, scratch, stream, kept);
      !s.ok())
    return s;
  return enqueue("cuda.combine_rows", elementwiseShape(tokens * d),
                 context.limits, [&](const LaunchShape &shape) {
                   return combineRows(expertRows, r.rowOfSlot, r.weights,
                                      tokens, k, d, /*inSlotOrder=*/false, out,
                                      shape, stream);
                 });
}

absl::Status dispatchForward(const KernelLaunch &l, CudaContext &context,
                             cudaStream_t stream, DeviceFault *fault) {
  const TensorRef &x = l.operands[0], &indices = l.operands[1];
  int64_t tokens = rows(x), d = lastDim(x), k = lastDim(indices),
          experts = attr(l, 0);
  StreamScratch scratch(stream);
  Routing r;
  r.slotOfRow = l.results[2].as<int32_t>();
  if (auto s = group(indices.as<int32_t>(), tokens * k, experts, {}, r,
                     context, context.site(l), fault, scratch, stream);
      !s.ok())
    return s;
  if (auto s = cudaStatus(cudaMemcpyAsync(l.results[1].data, r.counts,
                                          experts * sizeof(int64_t),
                                          cudaMemcpyDeviceToDevice, stream),
                          "expert row counts");
      !s.ok())
    return s;
  // Only the rows the counts hold: past a faulty index's, none are placed.
  return enqueue("cuda.gather_rows", elementwiseShape(r.total * d),
                 context.limits, [&](const LaunchShape &shape) {
                   return gatherRows(x.as<float>(), r.slotOfRow, r.total, d, k,
                                     false, l.results[0].data, shape, stream);
                 });
}

absl::Status expertMlpForward(const KernelLaunch &l, CudaContext &context,
                              cudaStream_t stream) {
  ExpertWeights w{l.operands[2], l.operands[3], l.operands[4]};
  StreamScratch scratch(stream);
  absl::StatusOr<GroupedInput> input =
      groupedInput(l, w, context, scratch, stream);
  if (!input.ok())
    return input.status();
  KeptRows kept; // ExpertMlpTrain: the gate and up rows are results
  if (l.results.size() == 3)
    kept = {l.results[1].as<float>(), l.results[2].as<float>()};
  return expertsForward(input->rows, input->counts, w,
                        l.results[0].as<float>(), context, scratch, stream,
                        kept);
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
