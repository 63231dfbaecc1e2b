//===- Losses.cu - cross-entropy, router losses and the router's grad ----===//
//
// Per-row terms first, then sums in a fixed order (columnSums, meanOfTerms),
// as the CPU's Loss.cpp and LossGrad.cpp take them in double.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/kernels/GradKernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/GradMath.h"
#include "runtime/cuda/math/RowMath.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

/// The row's largest logit, to every thread of the block.
__device__ float blockMax(const float *row, int64_t n) {
  __shared__ float partial[32];
  float best = -INFINITY;
  for (int64_t v = threadIdx.x; v < n; v += blockDim.x)
    best = fmaxf(best, row[v]);
  for (int offset = 16; offset > 0; offset /= 2)
    best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, offset));
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0)
    partial[warp] = best;
  __syncthreads();
  best = lane < int(blockDim.x / 32) ? partial[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset /= 2)
    best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, offset));
  return best;
}

/// sum(exp(row - best)) in double over the block, `best` the row's largest.
__device__ double expSum(const float *row, int64_t n, float &best) {
  best = blockMax(row, n);
  double sum = 0;
  for (int64_t v = threadIdx.x; v < n; v += blockDim.x)
    sum += expf(row[v] - best);
  return blockSum(sum);
}

__global__ void crossEntropyRowsKernel(const float *logits,
                                       const int32_t *labels, int64_t vocab,
                                       int64_t ignoreIndex, double *terms,
                                       double *counted, DeviceFault *fault,
                                       int32_t site) {
  int64_t r = blockIdx.x;
  int64_t label = labels[r];
  bool outside = label != ignoreIndex && (label < 0 || label >= vocab);
  if (label == ignoreIndex || outside) {
    if (threadIdx.x == 0) {
      terms[r] = counted[r] = 0;
      if (outside)
        reportFault(fault, kLabelOutOfRange, site, label, r, vocab);
    }
    return;
  }
  const float *row = logits + r * vocab;
  float best;
  double sum = expSum(row, vocab, best);
  if (threadIdx.x == 0) {
    terms[r] = best + log(sum) - row[label];
    counted[r] = 1;
  }
}

__global__ void meanOfTermsKernel(const double *terms, const double *counted,
                                  int64_t rows, float *loss, float *count) {
  double sum = 0, total = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    sum += terms[r];
    total += counted[r];
  }
  sum = blockSum(sum);
  total = blockSum(total);
  if (threadIdx.x == 0) {
    if (loss)
      *loss = total > 0 ? float(sum / total) : 0.0f;
    if (count)
      *count = float(total);
  }
}

__global__ void crossEntropyGradKernel(const float *logits,
                                       const int32_t *labels, int64_t vocab,
                                       int64_t ignoreIndex, const float *dloss,
                                       const float *count, float *dlogits) {
  int64_t r = blockIdx.x;
  float *out = dlogits + r * vocab;
  int64_t label = labels[r];
  if (label == ignoreIndex || label < 0 || label >= vocab) {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
      out[v] = 0.0f;
    return;
  }
  double total = *count; // the predicted rows, which meanOfTerms counted
  float perRow = total > 0 ? *dloss / float(total) : 0.0f;
  const float *row = logits + r * vocab;
  float best;
  double sum = expSum(row, vocab, best);
  float factor = float(perRow / sum);
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    out[v] = expf(row[v] - best) * factor - (v == label ? perRow : 0.0f);
}

__global__ void routerGradKernel(const float *logits, const int32_t *indices,
                                 const float *dweights, const float *extra,
                                 int64_t tokens, int experts, int k,
                                 bool normalize, float *dlogits) {
  double probs[kMaxRouterExperts], dprobs[kMaxRouterExperts];
  for (int64_t t = firstIndex(); t < tokens; t += gridStride())
    routerGradRow(logits + t * experts, indices + t * k, dweights + t * k,
                  extra ? extra + t * experts : nullptr, experts, k, normalize,
                  probs, dprobs, dlogits + t * experts);
}

__device__ bool counts(const int32_t *labels, int64_t ignoreIndex,
                       int64_t t) {
  return !labels || labels[t] != ignoreIndex;
}

__global__ void routerStatsKernel(const float *logits, int64_t tokens,
                                  int experts, int k, const int32_t *labels,
                                  int64_t ignoreIndex, double *stats) {
  float probs[kMaxRouterExperts], weights[kMaxRouterExperts];
  int32_t chosen[kMaxRouterExperts];
  double exact[kMaxRouterExperts];
  int64_t width = 2 * experts + 2;
  for (int64_t t = firstIndex(); t < tokens; t += gridStride()) {
    double *out = stats + t * width;
    for (int64_t i = 0; i < width; ++i)
      out[i] = 0;
    if (!counts(labels, ignoreIndex, t))
      continue;
    const float *row = logits + t * experts;
    routerTopKRow(row, experts, k, false, probs, weights, chosen);
    for (int j = 0; j < k; ++j)
      out[chosen[j]] += 1;
    double lse = softmaxRow(row, experts, exact);
    for (int e = 0; e < experts; ++e)
      out[experts + e] = exact[e];
    out[2 * experts] = 1;
    out[2 * experts + 1] = lse * lse;
  }
}

__global__ void routerLossGradKernel(const float *logits, int64_t tokens,
                                     int experts, const int32_t *labels,
                                     int64_t ignoreIndex, bool zLoss,
                                     const double *scale, float *dlogits) {
  double probs[kMaxRouterExperts], dprobs[kMaxRouterExperts];
  for (int64_t t = firstIndex(); t < tokens; t += gridStride()) {
    float *out = dlogits + t * experts;
    if (!counts(labels, ignoreIndex, t)) {
      for (int e = 0; e < experts; ++e)
        out[e] = 0.0f;
      continue;
    }
    double lse = softmaxRow(logits + t * experts, experts, probs);
    if (zLoss) { // d lse^2 / d logit_e = 2 lse p_e
      for (int e = 0; e < experts; ++e)
        out[e] = float(scale[0] * lse * probs[e]);
      continue;
    }
    for (int e = 0; e < experts; ++e)
      dprobs[e] = scale[e];
    softmaxGrad(probs, dprobs, experts, nullptr, out);
  }
}

/// sums: assignments [E], probabilities [E], tokens counted, sum of lse^2.
__global__ void routerLossFinishKernel(const double *sums, int experts,
                                       bool zLoss, const float *dloss,
                                       float *loss, double *scale) {
  double total = sums[2 * experts];
  if (zLoss) {
    if (loss)
      *loss = total > 0 ? float(sums[2 * experts + 1] / total) : 0.0f;
    if (scale)
      scale[0] = total > 0 ? 2.0 * *dloss / total : 0.0;
    return;
  }
  double value = 0;
  for (int e = 0; e < experts; ++e) {
    value += total > 0 ? (sums[e] / total) * (sums[experts + e] / total) : 0;
    if (scale)
      scale[e] = total > 0 ? double(*dloss) * experts * (sums[e] / total) / total
                           : 0.0;
  }
  if (loss)
    *loss = total > 0 ? float(experts * value) : 0.0f;
}

} // namespace

cudaError_t crossEntropyRows(const float *logits, const int32_t *labels,
                             int64_t vocab, int64_t ignoreIndex, double *terms,
                             double *counted, DeviceFault *fault, int32_t site,
                             const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, crossEntropyRowsKernel, logits, labels,
                    vocab, ignoreIndex, terms, counted, fault, site);
}

cudaError_t meanOfTerms(const double *terms, const double *counted,
                        int64_t rows, float *loss, float *count,
                        cudaStream_t stream) {
  return launchWith(rowShape(1, 1024), stream, meanOfTermsKernel, terms,
                    counted, rows, loss, count);
}

cudaError_t crossEntropyGrad(const float *logits, const int32_t *labels,
                             int64_t vocab, int64_t ignoreIndex,
                             const float *dloss, const float *count,
                             float *dlogits, const LaunchShape &shape,
                             cudaStream_t stream) {
  return launchWith(shape, stream, crossEntropyGradKernel, logits, labels,
                    vocab, ignoreIndex, dloss, count, dlogits);
}

cudaError_t routerGrad(const float *logits, const int32_t *indices,
                       const float *dweights, const float *extra,
                       int64_t tokens, int experts, int k, bool normalize,
                       float *dlogits, const LaunchShape &shape,
                       cudaStream_t stream) {
  return launchWith(shape, stream, routerGradKernel, logits, indices, dweights,
                    extra, tokens, experts, k, normalize, dlogits);
}

cudaError_t routerStats(const float *logits, int64_t tokens, int experts,
                        int k, const int32_t *labels, int64_t ignoreIndex,
                        double *stats, const LaunchShape &shape,
                        cudaStream_t stream) {
  return launchWith(shape, stream, routerStatsKernel, logits, tokens, experts,
                    k, labels, ignoreIndex, stats);
}

cudaError_t routerLossGrad(const float *logits, int64_t tokens, int experts,
                           const int32_t *labels, int64_t ignoreIndex,
                           bool zLoss, const double *scale, float *dlogits,
                           const LaunchShape &shape, cudaStream_t stream) {
  return launchWith(shape, stream, routerLossGradKernel, logits, tokens,
                    experts, labels, ignoreIndex, zLoss, scale, dlogits);
}

cudaError_t routerLossFinish(const double *sums, int experts, bool zLoss,
                             const float *dloss, float *loss, double *scale,
                             cudaStream_t stream) {
  return launchWith(rowShape(1, 1), stream, routerLossFinishKernel, sums,
                    experts, zLoss, dloss, loss, scale);
}

} // namespace moert::cuda
