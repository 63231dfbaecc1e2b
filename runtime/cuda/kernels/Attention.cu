//===- Attention.cu - flash-style attention forward ----------------------===//
//
// One block per (query tile, batch and head). Key tiles pass through shared
// memory; each query row keeps the online softmax state of
// math/OnlineSoftmax.h and its output accumulator in registers, spread over
// kLanesPerRow threads, so no S x S matrix exists anywhere. Causal blocks
// stop at their last query's key. GQA: query head h reads KV head
// h / (heads / kvHeads). Scalar fp32 products: a tensor-core version is the
// next step; this one is the reference the CUDA backend starts from. With
// bf16, q, k, v and the (unnormalised) probabilities are rounded to bf16
// before each product and the scale multiplies the fp32 dot products, as the
// CPU's kernel does: a key stored as bf16 is then the operand as it is.
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
/// `stride` floats) into `tile`, zeros past the sequence.
__device__ void loadTile(const float *x, int64_t first, int64_t seq,
                         int64_t stride, int64_t headDim, bool bf16,
                         float *tile) {
  for (int64_t i = threadIdx.x; i < kAttentionTile * headDim; i += blockDim.x) {
    int64_t r = i / headDim, d = i % headDim;
    tile[i] = first + r < seq
                  ? operand(x[(first + r) * stride + d], bf16)
                  : 0;
  }
}

/// What one launch attends: rows of `queries` queries per sequence over
/// `keys` key rows, query row i seeing keys 0..lastKey(i).
struct AttentionArgs {
  const float *q, *k, *v;
  float *out;
  int64_t queries, keys, heads, kvHeads, headDim;
  bool causal;
  const int32_t *positions; // cached: query i's last key; null otherwise
  float scale;
  bool bf16;
  DeviceFault *fault;
  int32_t site;
};

/// The last key query `query` of sequence `batch` sees (-1: none).
__device__ int64_t lastKey(const AttentionArgs &a, int64_t batch,
                           int64_t query) {
  if (query >= a.queries)
    return -1;
  if (!a.positions)
    return a.causal ? query : a.keys - 1;
  int64_t position = a.positions[batch * a.queries + query];
  if (position >= a.keys) {
    reportFault(a.fault, kPastCapacity, a.site, position, batch, a.keys);
    return -1;
  }
  // Any negative position sees no key (zeros), as on the CPU; below -1 it
  // would also wrap the tile's unsigned key bound.
  return position < 0 ? -1 : position;
}

__global__ void __launch_bounds__(kAttentionThreads)
    attentionKernel(AttentionArgs a) {
  extern __shared__ float shared[];
  int64_t headDim = a.headDim;
  float *queries = shared, *keys = queries + kAttentionTile * headDim,
        *values = keys + kAttentionTile * headDim,
        *scores = values + kAttentionTile * headDim;
  constexpr int kScoreStride = kAttentionTile + 1; // no bank conflicts
  __shared__ int64_t lastKeys[kAttentionTile];
  __shared__ unsigned long long keysEnd;

  int64_t firstQuery = int64_t(blockIdx.x) * kAttentionTile;
  int64_t batch = blockIdx.y / a.heads, head = blockIdx.y % a.heads;
  int64_t kvHead = head / (a.heads / a.kvHeads);
  int64_t qStride = a.heads * headDim, kvStride = a.kvHeads * headDim;
  const float *qHead = a.q + batch * a.queries * qStride + head * headDim;
  const float *kHead = a.k + batch * a.keys * kvStride + kvHead * headDim;
  const float *vHead = a.v + batch * a.keys * kvStride + kvHead * headDim;
  loadTile(qHead, firstQuery, a.queries, qStride, headDim, a.bf16,
           queries);
  if (threadIdx.x == 0)
    keysEnd = 0;
  __syncthreads();
  if (threadIdx.x < kAttentionTile) {
    lastKeys[threadIdx.x] = lastKey(a, batch, firstQuery + threadIdx.x);
    atomicMax(&keysEnd, static_cast<unsigned long long>(
                            lastKeys[threadIdx.x] + 1));
  }
  __syncthreads();

  int row = threadIdx.x / kLanesPerRow, lane = threadIdx.x % kLanesPerRow;
  int64_t query = firstQuery + row;
  SoftmaxRow state;
  float accumulated[kMaxDimsPerLane] = {};
  for (int64_t firstKey = 0; firstKey < int64_t(keysEnd);
       firstKey += kAttentionTile) {
    __syncthreads(); // the previous tile is no longer read
    loadTile(kHead, firstKey, a.keys, kvStride, headDim, a.bf16,
             keys);
    loadTile(vHead, firstKey, a.keys, kvStride, headDim, a.bf16, values);
    __syncthreads();
    for (int i = threadIdx.x; i < kAttentionTile * kAttentionTile;
         i += blockDim.x) {
      int r = i / kAttentionTile, c = i % kAttentionTile;
      int64_t ki = firstKey + c;
      float score = -INFINITY;
      if (ki <= lastKeys[r]) {
        float dot = 0;
        for (int64_t d = 0; d < headDim; ++d)
          dot += queries[r * headDim + d] * keys[c * headDim + d];
        score = dot * a.scale;
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
      float weight = operand(softmaxWeight(state, rowScores[c]), a.bf16);
      if (weight == 0.0f)
        continue;
      for (int j = 0; j < kMaxDimsPerLane; ++j) {
        int64_t d = lane + int64_t(j) * kLanesPerRow;
        if (d < headDim)
          accumulated[j] += weight * values[c * headDim + d];
      }
    }
  }
  if (query >= a.queries)
    return;
  // A row that sees no key (a negative position) is zeros.
  float finish = softmaxFinish(state);
  float *outRow = a.out + (batch * a.queries + query) * qStride + head * headDim;
  for (int j = 0; j < kMaxDimsPerLane; ++j) {
    int64_t d = lane + int64_t(j) * kLanesPerRow;
    if (d < headDim)
      outRow[d] = accumulated[j] * finish;
  }
}

cudaError_t launchAttention(const AttentionArgs &args, const LaunchShape &shape,
                            cudaStream_t stream) {
  // For the most any head width asks (kMaxAttentionHeadDim).
  if (cudaError_t error = optInSharedMemory(
          attentionKernel,
          attentionShape(1, 1, 1, kMaxAttentionHeadDim).sharedBytes);
      error != cudaSuccess)
    return error;
  return launchWith(shape, stream, attentionKernel, args);
}

} // namespace

cudaError_t attention(const float *q, const float *k, const float *v,
                      int64_t seq, int64_t heads, int64_t kvHeads,
                      int64_t headDim, bool causal, float scale, bool bf16,
                      float *out, const LaunchShape &shape,
                      cudaStream_t stream) {
  return launchAttention({q, k, v, out, seq, seq, heads, kvHeads, headDim,
                          causal, nullptr, scale, bf16, nullptr, 0},
                         shape, stream);
}

cudaError_t cachedAttention(const float *q, const int32_t *positions,
                            const float *keys, const float *values,
                            int64_t rows, int64_t capacity, int64_t heads,
                            int64_t kvHeads, int64_t headDim, float scale,
                            bool bf16, float *out, DeviceFault *fault,
                            int32_t site, const LaunchShape &shape,
                            cudaStream_t stream) {
  return launchAttention({q, keys, values, out, rows, capacity, heads,
                          kvHeads, headDim, true, positions, scale, bf16,
                          fault, site},
                         shape, stream);
}

} // namespace moert::cuda
