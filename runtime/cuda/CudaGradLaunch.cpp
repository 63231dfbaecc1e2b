//===- CudaGradLaunch.cpp - the CUDA backend's training ops ---------------===//
//
// One case per op of a training program, as runtime/cpu/CpuGradLaunch.cpp
// reads its operands. Shapes were checked by checkGradLaunch when the
// program was prepared.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/CudaGradLaunch.h"
#include "runtime/cuda/StreamScratch.h"
#include "runtime/cuda/kernels/GradKernels.h"
#include "runtime/exec/LaunchAttrs.h"

#include <numeric>

namespace moert::cuda {
using namespace launch_attrs;

namespace {


/// The router losses over every layer's logits (operands 1..layers):
/// each token's statistics, stacked, summed by column, then the loss or
/// the per-expert scale of its gradient (`dloss` non-null).
absl::Status routerLoss(const KernelLaunch &l, CudaContext &context,
                        cudaStream_t stream, bool zLoss, int64_t layers,
                        const float *dloss, float *loss, double *scale) {
  const auto &in = l.operands;
  int experts = int(lastDim(in[1]));
  int64_t k = zLoss ? 1 : attr(l, 0);
  int64_t ignore = attr(l, l.kernel->int_attrs()->size() - 1);
  int64_t width = 2 * experts + 2, tokens = 0;
  for (int64_t layer = 0; layer < layers; ++layer)
    tokens += rows(in[1 + layer]);
  StreamScratch scratch(stream);
  double *stats = nullptr, *partials = nullptr, *sums = nullptr;
  LaunchShape columns = columnShape(tokens, width);
  for (absl::Status s :
       {scratch.take(tokens * width, stats),
        scratch.take(columns.gridY * width, partials),
        scratch.take(width, sums)})
    if (!s.ok())
      return s;
  for (int64_t layer = 0, first = 0; layer < layers; ++layer) {
    const TensorRef &logits = in[1 + layer];
    int64_t n = rows(logits);
    if (auto s = enqueue("cuda.router_stats", elementwiseShape(n, 128), context.limits,
                     [&](const LaunchShape &shape) {
                       return routerStats(logits.as<float>(), n, experts,
                                          int(k), in[0].as<int32_t>(), ignore,
                                          stats + first * width, shape, stream);
                     });
        !s.ok())
      return s;
    first += n;
  }
  if (auto s = enqueue("cuda.column_sums", columns, context.limits,
                   [&](const LaunchShape &shape) {
                     return columnSums(stats, tokens, width, partials, sums,
                                       shape, stream);
                   });
      !s.ok())
    return s;
  if (auto s = cudaStatus(routerLossFinish(sums, experts, zLoss, dloss, loss,
                                           scale, stream),
                          "cuda.router_loss_finish");
      !s.ok())
    return s;
  if (!dloss)
    return absl::OkStatus();
  for (int64_t layer = 0; layer < layers; ++layer) {
    const TensorRef &logits = in[1 + layer];
    int64_t n = rows(logits);
    if (auto s = enqueue("cuda.router_loss_grad", elementwiseShape(n, 128), context.limits,
                     [&](const LaunchShape &shape) {
                       return routerLossGrad(
                           logits.as<float>(), n, experts, in[0].as<int32_t>(),
                           ignore, zLoss, scale, l.results[layer].as<float>(),
                           shape, stream);
                     });
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

} // namespace

absl::Status checkCudaGradLaunch(const KernelLaunch &launch) {
  switch (launch.kernel->op()) {
  case fb::OpKind::EmbeddingGrad:
  case fb::OpKind::RmsNormGrad:
  case fb::OpKind::BiasGrad:
  case fb::OpKind::ClampGrad:
  case fb::OpKind::SigmoidGateGrad:
  case fb::OpKind::LinearGradInput:
  case fb::OpKind::LinearGradWeight:
  case fb::OpKind::SiluGrad:
  case fb::OpKind::SwigluGrad:
  case fb::OpKind::CrossEntropy:
  case fb::OpKind::CrossEntropyGrad:
  case fb::OpKind::DispatchGrad:
  case fb::OpKind::CombineGrad:
    return absl::OkStatus();
  case fb::OpKind::AttentionGrad:
    return checkHeadWidth(launch, kMaxAttentionHeadDim, "attention");
  case fb::OpKind::RouterGrad:
  case fb::OpKind::LoadBalancingLoss:
  case fb::OpKind::LoadBalancingLossGrad:
  case fb::OpKind::RouterZLoss:
  case fb::OpKind::RouterZLossGrad: {
    int64_t experts = lastDim(launch.operands[1]);
    if (experts > kMaxRouterExperts)
      return absl::UnimplementedError(absl::StrCat(
          "the CUDA router takes at most ", kMaxRouterExperts, " experts, not ",
          experts));
    return absl::OkStatus();
  }
  default:
    return checkCudaInitLaunch(launch);
  }
}

absl::Status launchCudaGrad(const KernelLaunch &l, CudaContext &context,
                            cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  const TensorRef &out = l.results[0];
  switch (l.kernel->op()) {
  case fb::OpKind::EmbeddingGrad:
    return enqueue("cuda.embedding_grad", rowShape(out.shape[0], 256), context.limits,
               [&](const LaunchShape &s) {
                 return embeddingGrad(in[1].as<int32_t>(), in[1].numElements(),
                                      in[0].as<float>(), out.shape[1],
                                      out.as<float>(), s, stream);
               });
  case fb::OpKind::RmsNormGrad: {
    int64_t group = in[1].shape[0], groups = in[0].numElements() / group;
    StreamScratch scratch(stream);
    float *inverses = nullptr;
    double *partials = nullptr;
    LaunchShape columns = columnShape(groups, group);
    for (absl::Status s : {scratch.take(groups, inverses),
                           scratch.take(columns.gridY * group, partials)})
      if (!s.ok())
        return s;
    if (auto s = enqueue("cuda.rms_norm_grad", rowShape(groups, 256), context.limits,
                     [&](const LaunchShape &shape) {
                       return rmsNormGrad(in[0].as<float>(), in[1].data,
                                          in[1].dtype, in[2].as<float>(), group,
                                          floatAttr(l, 0), out.as<float>(),
                                          inverses, shape, stream);
                     });
        !s.ok())
      return s;
    return enqueue("cuda.rms_norm_weight_grad", columns, context.limits,
               [&](const LaunchShape &shape) {
                 return columnSums(in[2].as<float>(), in[0].as<float>(),
                                   inverses, groups, group, partials,
                                   l.results[1].as<float>(), shape, stream);
               });
  }
  case fb::OpKind::BiasGrad: {
    int64_t n = rows(in[0]), width = lastDim(in[0]);
    StreamScratch scratch(stream);
    double *partials = nullptr;
    LaunchShape columns = columnShape(n, width);
    if (auto s = scratch.take(columns.gridY * width, partials); !s.ok())
      return s;
    return enqueue("cuda.bias_grad", columns, context.limits, [&](const LaunchShape &s) {
      return columnSums(in[0].as<float>(), nullptr, nullptr, n, width,
                        partials, out.as<float>(), s, stream);
    });
  }
  case fb::OpKind::ClampGrad:
  case fb::OpKind::SiluGrad: {
    bool clamp = l.kernel->op() == fb::OpKind::ClampGrad;
    int64_t n = out.numElements();
    return enqueue(clamp ? "cuda.clamp_grad" : "cuda.silu_grad",
               elementwiseShape(n), context.limits, [&](const LaunchShape &s) {
                 return unaryGrad(clamp ? UnaryGrad::kClamp : UnaryGrad::kSilu,
                                  in[0].as<float>(), in[1].as<float>(), n,
                                  clamp ? float(floatAttr(l, 0)) : 0.0f,
                                  out.as<float>(), s, stream);
               });
  }
  case fb::OpKind::SwigluGrad:
    return enqueue("cuda.swiglu_grad", elementwiseShape(out.numElements()), context.limits,
               [&](const LaunchShape &s) {
                 return swigluGrad(in[0].as<float>(), in[1].as<float>(),
                                   in[2].as<float>(), out.numElements(),
                                   out.as<float>(), l.results[1].as<float>(), s,
                                   stream);
               });
  case fb::OpKind::SigmoidGateGrad:
    return enqueue("cuda.sigmoid_gate_grad", rowShape(rows(in[0]), 256), context.limits,
               [&](const LaunchShape &s) {
                 return sigmoidGateGrad(in[0].as<float>(), in[1].as<float>(),
                                        in[2].as<float>(), rows(in[0]),
                                        lastDim(in[0]), out.as<float>(),
                                        l.results[1].as<float>(), s, stream);
               });
  case fb::OpKind::LinearGradInput:
    return context.gemm->linearGradInput(in[0].as<float>(), rows(in[0]),
                                         lastDim(in[0]), in[1].data,
                                         in[1].dtype, in[1].shape[1],
                                         out.as<float>(), stream);
  case fb::OpKind::LinearGradWeight:
    return context.gemm->linearGradWeight(
        in[0].as<float>(), {in[1].data, in[1].dtype}, rows(in[0]),
        lastDim(in[0]), lastDim(in[1]), attrOr(l, 0, 0) != 0, out.as<float>(),
        stream);
  case fb::OpKind::AttentionGrad: {
    const TensorRef &q = in[0];
    int64_t batch = q.shape[0], seq = q.shape[1], heads = attr(l, 0),
            kvHeads = attr(l, 1), headDim = lastDim(q) / heads;
    auto [queries, keys] =
        attentionGradShapes(batch, seq, heads, kvHeads, headDim);
    for (const LaunchShape &shape : {queries, keys})
      if (auto s = checkLaunchShape(shape, "cuda.attention_grad",
                                    context.limits);
          !s.ok())
        return s;
    StreamScratch scratch(stream);
    float *lse = nullptr, *delta = nullptr;
    for (absl::Status s : {scratch.take(batch * heads * seq, lse),
                           scratch.take(batch * heads * seq, delta)})
      if (!s.ok())
        return s;
    return cudaStatus(
        attentionGrad(q.as<float>(), in[1].as<float>(), in[2].as<float>(),
                      in[3].as<float>(), batch, seq, heads, kvHeads, headDim,
                      attr(l, 2) != 0, float(floatAttr(l, 0)),
                      attrOr(l, 3, 0) != 0, out.as<float>(),
                      l.results[1].as<float>(), l.results[2].as<float>(), lse,
                      delta, stream),
        "cuda.attention_grad");
  }
  case fb::OpKind::DispatchGrad:
  case fb::OpKind::CombineGrad: {
    // Both read the source slots dispatch wrote, checked here as combine
    // checks them.
    bool dispatch = l.kernel->op() == fb::OpKind::DispatchGrad;
    const TensorRef &slotsOf = dispatch ? in[1] : in[2];
    int64_t slots = slotsOf.numElements();
    int64_t k = dispatch ? attr(l, 0) : lastDim(in[1]);
    int64_t d = dispatch ? lastDim(out) : lastDim(in[0]);
    StreamScratch scratch(stream);
    int64_t *rowOfSlot = nullptr;
    if (auto s = scratch.take(slots, rowOfSlot); !s.ok())
      return s;
    int32_t site = context.site(l);
    if (auto s = enqueue("cuda.invert_slots", elementwiseShape(slots), context.limits,
                     [&](const LaunchShape &shape) {
                       return invertSlots(slotsOf.as<int32_t>(), slots,
                                          rowOfSlot, fault, site, shape,
                                          stream);
                     });
        !s.ok())
      return s;
    if (dispatch) // the transpose of a gather: each token's rows, summed
      return enqueue("cuda.dispatch_grad", elementwiseShape(out.numElements()),
                 context.limits, [&](const LaunchShape &shape) {
                   return combineRows(in[0].as<float>(), rowOfSlot, nullptr,
                                      slots / k, k, d, /*inSlotOrder=*/true,
                                      out.as<float>(), shape, stream);
                 });
    return enqueue("cuda.combine_grad", rowShape(slots, 256), context.limits,
               [&](const LaunchShape &shape) {
                 return combineGrad(in[0].as<float>(), in[1].as<float>(),
                                    slotsOf.as<int32_t>(), k, d,
                                    in[3].as<float>(), out.as<float>(),
                                    l.results[1].as<float>(), shape, stream);
               });
  }
  case fb::OpKind::RouterGrad:
    return enqueue("cuda.router_grad", elementwiseShape(rows(in[0]), 128), context.limits,
               [&](const LaunchShape &s) {
                 return routerGrad(in[0].as<float>(), in[1].as<int32_t>(),
                                   in[2].as<float>(),
                                   in.size() > 3 ? in[3].as<float>() : nullptr,
                                   rows(in[0]), int(lastDim(in[0])),
                                   int(attr(l, 0)), attr(l, 1) != 0,
                                   out.as<float>(), s, stream);
               });
  case fb::OpKind::CrossEntropy:
  case fb::OpKind::CrossEntropyGrad: {
    bool grad = l.kernel->op() == fb::OpKind::CrossEntropyGrad;
    int64_t n = rows(in[0]), vocab = lastDim(in[0]);
    StreamScratch scratch(stream);
    double *terms = nullptr, *counted = nullptr;
    float *count = nullptr;
    for (absl::Status s : {scratch.take(n, terms), scratch.take(n, counted),
                           scratch.take(1, count)})
      if (!s.ok())
        return s;
    int32_t site = context.site(l);
    if (n > 0) // no rows: the mean of nothing, 0
      if (auto s = enqueue("cuda.cross_entropy_rows", rowShape(n, 256),
                           context.limits, [&](const LaunchShape &shape) {
                             return crossEntropyRows(
                                 in[0].as<float>(), in[1].as<int32_t>(), vocab,
                                 attr(l, 0), terms, counted, fault, site, shape,
                                 stream);
                           });
          !s.ok())
        return s;
    if (auto s = cudaStatus(meanOfTerms(terms, counted, n,
                                        grad ? nullptr : out.as<float>(),
                                        grad ? count : nullptr, stream),
                            "cuda.cross_entropy_mean");
        !s.ok() || !grad)
      return s;
    return enqueue("cuda.cross_entropy_grad", rowShape(n, 256), context.limits,
                   [&](const LaunchShape &shape) {
                     return crossEntropyGrad(in[0].as<float>(),
                                             in[1].as<int32_t>(), vocab,
                                             attr(l, 0), in[2].as<float>(),
                                             count, out.as<float>(), shape,
                                             stream);
                   });
  }
  case fb::OpKind::LoadBalancingLoss:
  case fb::OpKind::RouterZLoss: {
    bool zLoss = l.kernel->op() == fb::OpKind::RouterZLoss;
    return routerLoss(l, context, stream, zLoss, int64_t(in.size()) - 1,
                      nullptr, out.as<float>(), nullptr);
  }
  case fb::OpKind::LoadBalancingLossGrad:
  case fb::OpKind::RouterZLossGrad: {
    bool zLoss = l.kernel->op() == fb::OpKind::RouterZLossGrad;
    StreamScratch scratch(stream);
    double *scale = nullptr;
    if (auto s = scratch.take(lastDim(in[1]), scale); !s.ok())
      return s;
    return routerLoss(l, context, stream, zLoss, int64_t(in.size()) - 2,
                      in.back().as<float>(), nullptr, scale);
  }
  default:
    return launchCudaInit(l, context, stream, fault);
  }
}

} // namespace moert::cuda
