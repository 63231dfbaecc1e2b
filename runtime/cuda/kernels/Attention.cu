//===- Attention.cu - flash-style attention forward ----------------------===//
//
// One block per (query tile, batch and head). Key tiles pass through shared
// memory; each query row keeps the online softmax state of
// math/OnlineSoftmax.h and its output accumulator in registers, spread over
// kLanesPerRow threads, so no S x S matrix exists anywhere. Causal blocks
// stop at their last query's key. GQA: query head h reads KV head
// h / (heads / kvHeads). Scalar fp32 products: a tensor-core version is the
// next step; this one is the reference the CUDA backend starts from. With
// bf16, q, scale * k, v and the (unnormalised) probabilities are rounded to
// bf16 before each product.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/kernels/Kernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/OnlineSoftmax.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

constexpr int kLanesPerRow = kAttentionThreads / kAttentionTile;
constexpr int kMaxDimsPerLane = kMaxAttentionHeadDim / kLanesPerRow;

__device__ inline float operand(float x, bool bf16) {
  return bf16 ? bf16ToFloat(floatToBf16(x)) : x;
}

/// Rows [first, first + kAttentionTile) of one head of `x` (rows of
/// `stride` floats), times `scale`, into `tile`, zeros past the sequence.
__device__ void loadTile(const float *x, int64_t first, int64_t seq,
                         int64_t stride, int64_t headDim, float scale,
                         bool bf16, float *tile) {
  for (int64_t i = threadIdx.x; i < kAttentionTile * headDim; i += blockDim.x) {
    int64_t r = i / headDim, d = i % headDim;
    tile[i] = first + r < seq
                  ? operand(x[(first + r) * stride + d] * scale, bf16)
                  : 0;
  }
}

__global__ void __launch_bounds__(kAttentionThreads)
    attentionKernel(const float *q, const float *k, const float *v,
                    int64_t seq, int64_t heads, int64_t kvHeads,
                    int64_t headDim, bool causal, float scale, bool bf16,
                    float *out) {
  extern __shared__ float shared[];
  float *queries = shared, *keys = queries + kAttentionTile * headDim,
        *values = keys + kAttentionTile * headDim,
        *scores = values + kAttentionTile * headDim;
  constexpr int kScoreStride = kAttentionTile + 1; // no bank conflicts

  int64_t firstQuery = int64_t(blockIdx.x) * kAttentionTile;
  int64_t batch = blockIdx.y / heads, head = blockIdx.y % heads;
  int64_t kvHead = head / (heads / kvHeads);
  int64_t qStride = heads * headDim, kvStride = kvHeads * headDim;
  const float *qHead = q + batch * seq * qStride + head * headDim;
  const float *kHead = k + batch * seq * kvStride + kvHead * headDim;
  const float *vHead = v + batch * seq * kvStride + kvHead * headDim;
  // bf16 products take the scale inside the rounded keys, as the CPU's
  // mixed-precision kernel does; fp32 ones scale the dot product.
  float keyScale = bf16 ? scale : 1.0f, scoreScale = bf16 ? 1.0f : scale;
  loadTile(qHead, firstQuery, seq, qStride, headDim, 1.0f, bf16, queries);

  int row = threadIdx.x / kLanesPerRow, lane = threadIdx.x % kLanesPerRow;
  int64_t query = firstQuery + row;
  SoftmaxRow state;
  float accumulated[kMaxDimsPerLane] = {};
  int64_t lastKey =
      causal ? min(seq, firstQuery + kAttentionTile) : seq; // exclusive
  for (int64_t firstKey = 0; firstKey < lastKey; firstKey += kAttentionTile) {
    __syncthreads(); // the previous tile is no longer read
    loadTile(kHead, firstKey, seq, kvStride, headDim, keyScale, bf16, keys);
    loadTile(vHead, firstKey, seq, kvStride, headDim, 1.0f, bf16, values);
    __syncthreads();
    for (int i = threadIdx.x; i < kAttentionTile * kAttentionTile;
         i += blockDim.x) {
      int r = i / kAttentionTile, c = i % kAttentionTile;
      int64_t qi = firstQuery + r, ki = firstKey + c;
      float score = -INFINITY;
      if (qi < seq && ki < seq && !(causal && ki > qi)) {
        float dot = 0;
        for (int64_t d = 0; d < headDim; ++d)
          dot += queries[r * headDim + d] * keys[c * headDim + d];
        score = dot * scoreScale;
      }
      scores[r * kScoreStride + c] = score;
    }
    __syncthreads();
    const float *rowScores = scores + row * kScoreStride;
    float tileLargest = -INFINITY;
    for (int c = 0; c < kAttentionTile; ++c)
      tileLargest = fmaxf(tileLargest, rowScores[c]);
    float factor = softmaxRescale(state, tileLargest);
    for (int j = 0; j < kMaxDimsPerLane; ++j)
      accumulated[j] *= factor;
    for (int c = 0; c < kAttentionTile; ++c) {
      float weight = operand(softmaxWeight(state, rowScores[c]), bf16);
      if (weight == 0.0f)
        continue;
      for (int j = 0; j < kMaxDimsPerLane; ++j) {
        int64_t d = lane + int64_t(j) * kLanesPerRow;
        if (d < headDim)
          accumulated[j] += weight * values[c * headDim + d];
      }
    }
  }
  if (query >= seq)
    return;
  float finish = softmaxFinish(state);
  float *outRow = out + (batch * seq + query) * qStride + head * headDim;
  for (int j = 0; j < kMaxDimsPerLane; ++j) {
    int64_t d = lane + int64_t(j) * kLanesPerRow;
    if (d < headDim)
      outRow[d] = accumulated[j] * finish;
  }
}

} // namespace

cudaError_t attention(const float *q, const float *k, const float *v,
                      int64_t seq, int64_t heads, int64_t kvHeads,
                      int64_t headDim, bool causal, float scale, bool bf16,
                      float *out, const LaunchShape &shape,
                      cudaStream_t stream) {
  // Above 48 KiB, dynamic shared memory is opted into per kernel: once, for
  // the most any head width asks (kMaxAttentionHeadDim).
  static cudaError_t optedIn = cudaFuncSetAttribute(
      attentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
      int(attentionShape(1, 1, 1, kMaxAttentionHeadDim).sharedBytes));
  if (optedIn != cudaSuccess)
    return optedIn;
  return launchWith(shape, stream, attentionKernel, q, k, v, seq, heads,
                    kvHeads, headDim, causal, scale, bf16, out);
}

} // namespace moert::cuda
