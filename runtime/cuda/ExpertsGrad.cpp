//===- ExpertsGrad.cpp - backward of MoE blocks on the device -------------===//
//
// The CPU's fusedExpertsGrad (runtime/cpu/FusedExpertsGrad.cpp): the
// routing recomputed from the logits, the experts' backward over the
// grouped rows (their hidden states recomputed unless the forward kept
// them), the rows' input gradients added into dx in ascending expert
// order, then the router's part: its logits' gradient from the routing
// weights' (and the router losses'), its linear layer's backward.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Experts.h"

#include "runtime/cuda/ExpertSteps.h"
#include "runtime/cuda/kernels/GradKernels.h"
#include "runtime/exec/FusedBlockOperands.h"
#include "runtime/exec/LaunchAttrs.h"

namespace moert::cuda {
using namespace launch_attrs;

absl::Status fusedExpertsBackward(const KernelLaunch &l, CudaContext &context,
                                  cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  const TensorRef &x = in[0], &router = in[1], &logits = in[5], &dout = in[6];
  ExpertWeights w{in[2], in[3], in[4]};
  FusedBlockOperands at(l);
  int64_t tokens = rows(x), d = lastDim(x), experts = w.experts(),
          k = attr(l, 0), slots = tokens * k;
  bool normalize = attr(l, 1) != 0, bf16 = w.bf16();
  float *dx = l.results[0].as<float>();

  StreamScratch scratch(stream);
  absl::StatusOr<SkippedTokens> skip =
      skippedTokens(l, at.labels, k, context, scratch, stream);
  if (!skip.ok())
    return skip.status();
  Routing r;
  if (auto s = route(logits.as<float>(), tokens, experts, k, normalize, *skip,
                     r, context, context.site(l), fault, scratch, stream);
      !s.ok())
    return s;
  uint8_t *grouped = nullptr;
  float *dRows = nullptr, *dGrouped = nullptr, *dweights = nullptr,
        *dlogits = nullptr, *dxRouter = nullptr;
  for (absl::Status s :
       {scratch.take(r.total * d * (bf16 ? 2 : 4), grouped),
        scratch.take(r.total * d, dRows), scratch.take(r.total * d, dGrouped),
        scratch.take(slots, dweights), scratch.take(tokens * experts, dlogits),
        scratch.take(tokens * d, dxRouter)})
    if (!s.ok())
      return s;
  // A skipped token's slots have no row: their routing weights get none.
  if (auto s = cudaStatus(cudaMemsetAsync(dweights, 0, slots * sizeof(float),
                                          stream),
                          "routing weight gradients");
      !s.ok())
    return s;
  for (auto [from, to, rounded] :
       {std::tuple{x.as<float>(), static_cast<void *>(grouped), bf16},
        std::tuple{dout.as<float>(), static_cast<void *>(dRows), false}})
    if (auto s = enqueue("cuda.gather_rows", elementwiseShape(r.total * d),
                         context.limits, [&](const LaunchShape &shape) {
                           return gatherRows(from, r.slotOfRow, r.total, d, k,
                                             rounded, to, shape, stream);
                         });
        !s.ok())
      return s;
  KeptRows saved;
  if (at.saved >= 0)
    saved = {in[at.saved].as<float>(), in[at.saved + 1].as<float>()};
  ExpertGrads grads{dGrouped, l.results[2].as<float>(),
                    l.results[3].as<float>(), l.results[4].as<float>(),
                    dweights};
  if (auto s = expertsBackward(grouped, dRows, r.hostCounts, w, r.weights,
                               r.slotOfRow, saved, grads, context, scratch,
                               stream);
      !s.ok())
    return s;
  if (auto s = enqueue("cuda.combine_rows", elementwiseShape(tokens * d),
                       context.limits, [&](const LaunchShape &shape) {
                         return combineRows(dGrouped, r.rowOfSlot, nullptr,
                                            tokens, k, d, false, dx, shape,
                                            stream);
                       });
      !s.ok())
    return s;

  // The router: its logits' gradient, then its linear layer's.
  const float *extra = at.logitsGrad >= 0 ? in[at.logitsGrad].as<float>()
                                          : nullptr;
  if (auto s = enqueue("cuda.router_grad", elementwiseShape(tokens, 128),
                       context.limits, [&](const LaunchShape &shape) {
                         return routerGrad(logits.as<float>(), r.indices,
                                           dweights, extra, tokens,
                                           int(experts), int(k), normalize,
                                           dlogits, shape, stream);
                       });
      !s.ok())
    return s;
  if (auto s = context.gemm->linearGradInput(dlogits, tokens, experts,
                                             router.data, router.dtype, d,
                                             dxRouter, stream);
      !s.ok())
    return s;
  if (auto s = enqueue("cuda.add", elementwiseShape(tokens * d),
                       context.limits, [&](const LaunchShape &shape) {
                         return binary(Binary::kAdd, dx, dxRouter, tokens * d,
                                       dx, shape, stream);
                       });
      !s.ok())
    return s;
  return context.gemm->linearGradWeight(
      dlogits, {x.as<float>()}, tokens, experts, d,
      router.dtype == DType::kBF16, l.results[1].as<float>(), stream);
}

absl::Status expertMlpBackward(const KernelLaunch &l, CudaContext &context,
                               cudaStream_t stream) {
  const auto &in = l.operands;
  ExpertWeights w{in[2], in[3], in[4]};
  StreamScratch scratch(stream);
  absl::StatusOr<GroupedInput> input =
      groupedInput(l, w, context, scratch, stream);
  if (!input.ok())
    return input.status();
  KeptRows saved;
  if (in.size() == 8)
    saved = {in[6].as<float>(), in[7].as<float>()};
  ExpertGrads grads{l.results[0].as<float>(), l.results[1].as<float>(),
                    l.results[2].as<float>(), l.results[3].as<float>()};
  return expertsBackward(input->rows, in[5].as<float>(), input->counts, w,
                         nullptr, nullptr, saved, grads, context, scratch,
                         stream);
}

} // namespace moert::cuda
