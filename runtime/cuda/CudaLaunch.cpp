//===- CudaLaunch.cpp - the CUDA backend's launch table -------------------===//
//
// One case per op: the bound tensors, the launch shape (checked against the
// device), the kernel. Ops without a CUDA kernel yet are refused when the
// program is prepared, naming the op, before anything runs.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Enqueue.h"
#include "runtime/cuda/CudaContext.h"
#include "runtime/cuda/CudaGradLaunch.h"
#include "runtime/cuda/CudaStatus.h"
#include "runtime/cuda/Experts.h"
#include "runtime/cuda/math/RowMath.h"
#include "runtime/exec/LaunchAttrs.h"

namespace moert::cuda {
using namespace launch_attrs;

int32_t CudaContext::site(const KernelLaunch &launch) {
  std::string location = launch.kernel->location()->str();
  auto [at, added] = siteOf.emplace(location, int32_t(siteLocations.size()));
  if (added)
    siteLocations.push_back(location);
  return at->second;
}

absl::Status checkHeadWidth(const KernelLaunch &launch, int64_t most,
                            const char *what) {
  int64_t headDim = lastDim(launch.operands[0]) / attr(launch, 0);
  if (headDim <= most)
    return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat("the CUDA ", what,
                                               " takes heads of at most ", most,
                                               " features, not ", headDim));
}

bool readsStoredBf16(const KernelLaunch &launch) {
  switch (launch.kernel->op()) {
  case fb::OpKind::Linear: // cuBLASLt reads and writes them as they are
    return launch.operands[1].dtype == DType::kBF16;
  case fb::OpKind::LinearGradWeight: // on operands rounded to bf16
    return attrOr(launch, 0, 0) != 0;
  default:
    return false;
  }
}

absl::Status checkCudaLaunch(const KernelLaunch &launch) {
  switch (launch.kernel->op()) {
  case fb::OpKind::Embedding:
  case fb::OpKind::RmsNorm:
  case fb::OpKind::AddBias:
  case fb::OpKind::Clamp:
  case fb::OpKind::SigmoidGate:
  case fb::OpKind::Linear:
  case fb::OpKind::Add:
  case fb::OpKind::Mul:
  case fb::OpKind::Silu:
  case fb::OpKind::Swiglu:
  case fb::OpKind::Scale:
  case fb::OpKind::Fill:
  case fb::OpKind::Dispatch:
  case fb::OpKind::ExpertMlp:
  case fb::OpKind::ExpertMlpTrain:
  case fb::OpKind::ExpertMlpGrad:
  case fb::OpKind::Combine:
  case fb::OpKind::CacheWrite:
  case fb::OpKind::SelectRows:
    return absl::OkStatus();
  case fb::OpKind::FusedExperts:
  case fb::OpKind::FusedExpertsTrain:
  case fb::OpKind::FusedExpertsGrad:
    if (expertSplit(launch) > 1)
      return absl::UnimplementedError(
          "the CUDA backend runs MoE blocks on one device only, for now");
    [[fallthrough]];
  case fb::OpKind::Router:
    if (launch.operands[1].shape[0] > kMaxRouterExperts)
      return absl::UnimplementedError(absl::StrCat(
          "the CUDA router takes at most ", kMaxRouterExperts, " experts, not ",
          launch.operands[1].shape[0]));
    return absl::OkStatus();
  case fb::OpKind::Rope:
    return checkHeadWidth(launch, kMaxRopeHeadDim, "RoPE");
  case fb::OpKind::Attention:
  case fb::OpKind::CachedAttention:
    return checkHeadWidth(launch, kMaxAttentionHeadDim, "attention");
  default:
    return checkCudaGradLaunch(launch);
  }
}

namespace {


absl::Status elementwise(const char *kernel, const TensorRef &out,
                         const CudaContext &context, cudaStream_t stream,
                         Unary op, const float *x, float param) {
  int64_t n = out.numElements();
  return enqueue(kernel, elementwiseShape(n), context.limits,
                 [&](const LaunchShape &s) {
    return unary(op, x, n, param, out.as<float>(), s, stream);
  });
}

absl::Status elementwise(const char *kernel, const TensorRef &out,
                         const CudaContext &context, cudaStream_t stream,
                         Binary op, const float *a, const float *b) {
  int64_t n = out.numElements();
  return enqueue(kernel, elementwiseShape(n), context.limits,
                 [&](const LaunchShape &s) {
    return binary(op, a, b, n, out.as<float>(), s, stream);
  });
}

} // namespace

absl::Status launchCuda(const KernelLaunch &l, CudaContext &context,
                        cudaStream_t stream, DeviceFault *fault) {
  const auto &in = l.operands;
  if (l.kernel->op() == fb::OpKind::CacheWrite) { // the one without results
    const TensorRef &cache = in[0], &rows = in[1];
    if (rows.numElements() == 0)
      return absl::OkStatus();
    int32_t site = context.site(l);
    return enqueue("cuda.cache_write", elementwiseShape(rows.numElements()),
               context.limits, [&](const LaunchShape &s) {
                 return cacheWrite(rows.as<float>(), in[2].as<int32_t>(),
                                   rows.shape[0], rows.shape[1], rows.shape[2],
                                   cache.shape[1], cache.as<float>(), fault,
                                   site, s, stream);
               });
  }
  const TensorRef &out = l.results[0];
  // No work, and no grid to launch it on.
  for (const TensorRef &result : l.results)
    if (result.numElements() == 0)
      return absl::OkStatus();
  switch (l.kernel->op()) {
  case fb::OpKind::Embedding: {
    const TensorRef &table = in[0], &ids = in[1];
    int64_t count = ids.numElements(), d = table.shape[1];
    int32_t site = context.site(l);
    return enqueue("cuda.embedding", elementwiseShape(count * d), context.limits,
               [&](const LaunchShape &s) {
                 return embedding(table.data, table.dtype, table.shape[0], d,
                                  ids.as<int32_t>(), count, out.as<float>(),
                                  fault, site, s, stream);
               });
  }
  case fb::OpKind::RmsNorm: {
    int64_t group = in[1].shape[0], groups = in[0].numElements() / group;
    return enqueue("cuda.rms_norm", rowShape(groups, 256), context.limits,
               [&](const LaunchShape &s) {
                 return rmsNorm(in[0].as<float>(), in[1].data, in[1].dtype,
                                groups, group, floatAttr(l, 0),
                                out.as<float>(), s, stream);
               });
  }
  case fb::OpKind::AddBias:
    return enqueue("cuda.add_bias", elementwiseShape(out.numElements()), context.limits,
               [&](const LaunchShape &s) {
                 return addBias(in[0].as<float>(), in[1].data, in[1].dtype,
                                rows(in[0]), lastDim(in[0]), out.as<float>(),
                                s, stream);
               });
  case fb::OpKind::SigmoidGate:
    return enqueue("cuda.sigmoid_gate", elementwiseShape(out.numElements()),
               context.limits, [&](const LaunchShape &s) {
                 return sigmoidGate(in[0].as<float>(), in[1].as<float>(),
                                    rows(in[0]), lastDim(in[0]),
                                    out.as<float>(), s, stream);
               });
  case fb::OpKind::Clamp:
    return elementwise("cuda.clamp", out, context, stream, Unary::kClamp,
                       in[0].as<float>(), float(floatAttr(l, 0)));
  case fb::OpKind::Scale:
    return elementwise("cuda.scale", out, context, stream, Unary::kScale,
                       in[0].as<float>(), float(floatAttr(l, 0)));
  case fb::OpKind::Fill:
    return elementwise("cuda.fill", out, context, stream, Unary::kFill, nullptr,
                       float(floatAttr(l, 0)));
  case fb::OpKind::Silu:
    return elementwise("cuda.silu", out, context, stream, Unary::kSilu,
                       in[0].as<float>(), 0.0f);
  case fb::OpKind::Add:
    return elementwise("cuda.add", out, context, stream, Binary::kAdd,
                       in[0].as<float>(), in[1].as<float>());
  case fb::OpKind::Mul:
    return elementwise("cuda.mul", out, context, stream, Binary::kMul,
                       in[0].as<float>(), in[1].as<float>());
  case fb::OpKind::Swiglu:
    return elementwise("cuda.swiglu", out, context, stream, Binary::kSwiglu,
                       in[0].as<float>(), in[1].as<float>());
  case fb::OpKind::Linear:
    return context.gemm->linear({in[0].data, in[0].dtype}, rows(in[0]),
                                lastDim(in[0]), in[1].data, in[1].dtype,
                                in[1].shape[0], out.data, out.dtype, stream);
  case fb::OpKind::Rope: {
    int64_t heads = attr(l, 0), tokens = in[0].shape[0] * in[0].shape[1],
            headDim = lastDim(in[0]) / heads;
    const TensorRef *positions = in.size() > 1 ? &in[1] : nullptr;
    RopeFrequencies frequencies{};
    for (int64_t i = 0; i < headDim / 2; ++i)
      frequencies.inverse[i] = cuda_math::ropeInverseFrequency(
          i, headDim, float(floatAttr(l, 0)));
    return enqueue("cuda.rope", rowShape(tokens, 128), context.limits,
               [&](const LaunchShape &s) {
                 return rope(in[0].as<float>(), out.as<float>(), tokens,
                             in[0].shape[1], heads, headDim, frequencies,
                             positions ? positions->data : nullptr,
                             positions ? positions->dtype : DType::kI32,
                             attrOr(l, 1, 0) != 0, s, stream);
               });
  }
  case fb::OpKind::Attention: {
    const TensorRef &q = in[0];
    int64_t heads = attr(l, 0), headDim = lastDim(q) / heads;
    return enqueue("cuda.attention",
               attentionShape(q.shape[0], q.shape[1], heads, headDim), context.limits,
               [&](const LaunchShape &s) {
                 return attention(q.as<float>(), in[1].as<float>(),
                                  in[2].as<float>(), q.shape[1], heads,
                                  attr(l, 1), headDim, attr(l, 2) != 0,
                                  float(floatAttr(l, 0)),
                                  attrOr(l, 3, 0) != 0, out.as<float>(), s,
                                  stream);
               });
  }
  case fb::OpKind::Router: {
    int64_t tokens = rows(in[0]), experts = in[1].shape[0], k = attr(l, 0);
    float *logits = l.results[0].as<float>();
    if (auto s = context.gemm->linear(in[0].as<float>(), tokens, lastDim(in[0]),
                                      in[1].data, in[1].dtype, experts, logits,
                                      stream);
        !s.ok())
      return s;
    return enqueue("cuda.router_top_k", elementwiseShape(tokens, 128), context.limits,
               [&](const LaunchShape &s) {
                 return routerTopK(logits, tokens, int(experts), int(k),
                                   attr(l, 1) != 0, l.results[1].as<float>(),
                                   l.results[2].as<int32_t>(), s, stream);
               });
  }
  case fb::OpKind::FusedExperts:
  case fb::OpKind::FusedExpertsTrain:
    return fusedExpertsForward(l, context, stream, fault);
  case fb::OpKind::FusedExpertsGrad:
    return fusedExpertsBackward(l, context, stream, fault);
  case fb::OpKind::ExpertMlpGrad:
    return expertMlpBackward(l, context, stream);
  case fb::OpKind::Dispatch:
    return dispatchForward(l, context, stream, fault);
  case fb::OpKind::ExpertMlp:
  case fb::OpKind::ExpertMlpTrain:
    return expertMlpForward(l, context, stream);
  case fb::OpKind::Combine:
    return combineForward(l, context, stream, fault);
  case fb::OpKind::CachedAttention: {
    const TensorRef &q = in[0], &keys = in[2];
    int64_t heads = attr(l, 0), headDim = lastDim(q) / heads;
    int32_t site = context.site(l);
    return enqueue("cuda.cached_attention",
               attentionShape(q.shape[0], q.shape[1], heads, headDim), context.limits,
               [&](const LaunchShape &s) {
                 return cachedAttention(
                     q.as<float>(), in[1].as<int32_t>(), keys.as<float>(),
                     in[3].as<float>(), q.shape[1], keys.shape[1], heads,
                     attr(l, 1), headDim, float(floatAttr(l, 0)),
                     attr(l, 2) != 0, out.as<float>(), fault, site, s, stream);
               });
  }
  case fb::OpKind::SelectRows: {
    int32_t site = context.site(l);
    return enqueue("cuda.select_rows", elementwiseShape(out.numElements()), context.limits,
               [&](const LaunchShape &s) {
                 return selectRows(in[0].as<float>(), in[1].as<int32_t>(),
                                   in[0].shape[0], in[0].shape[1],
                                   in[1].shape[1], lastDim(in[0]),
                                   out.as<float>(), fault, site, s, stream);
               });
  }
  default:
    return launchCudaGrad(l, context, stream, fault);
  }
}

} // namespace moert::cuda
