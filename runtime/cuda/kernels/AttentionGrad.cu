//===- AttentionGrad.cu - flash-style attention backward -----------------===//
//
// Recomputes the probabilities from q and k, as the forward pass stores
// none, in two kernels and no S x S matrix:
// - by query tile (as the forward): a first sweep over the keys gives each
//   row's logsumexp and D_i = sum_j P_ij <dO_i, v_j> (online, as the
//   forward accumulates its output); a second gives dq_i = sum_j dS_ij k_j
//   with dS_ij = P_ij (<dO_i, v_j> - D_i);
// - by key tile and KV head: dv_j = sum_i P_ij dO_i and dk_j = sum_i dS_ij
//   q_i over every query head of the group and query tile in order, so no
//   two blocks write one row and no atomics are needed.
// With bf16, q, k, v, dO, P and dS are rounded to bf16 before each product
// and the scale multiplies fp32 values, as in the forward kernel: the CPU's
// mixed-precision kernel rounds scale * dS instead of dS, the same
// arithmetic rounded at another place (bf16's tolerance).
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/kernels/GradKernels.h"
#include "runtime/cuda/kernels/Launch.cuh"
#include "runtime/cuda/math/OnlineSoftmax.h"
#include "runtime/cuda/math/Storage.h"

namespace moert::cuda {
namespace {
using namespace cuda_math;

constexpr int kTile = kAttentionTile, kLanes = kAttentionThreads / kTile;
constexpr int kDimsPerLane = kMaxAttentionHeadDim / kLanes;
constexpr int kStride = kTile + 1; // score tiles, no bank conflicts

__device__ inline float operand(float x, bool bf16) {
  return bf16 ? bf16ToFloat(floatToBf16(x)) : x;
}

struct Args {
  const float *q, *k, *v, *dout;
  float *dq, *dk, *dv;
  float *lse, *delta; // [B, H, S] each
  int64_t seq, heads, kvHeads, headDim;
  bool causal;
  float scale;
  bool bf16;
};

/// Rows [first, first + kTile) of one head into `tile`.
__device__ void load(const float *x, int64_t first, int64_t seq,
                     int64_t stride, int64_t headDim, bool bf16,
                     float *tile) {
  for (int64_t i = threadIdx.x; i < kTile * headDim; i += blockDim.x) {
    int64_t r = i / headDim, d = i % headDim;
    tile[i] = first + r < seq ? operand(x[(first + r) * stride + d], bf16)
                              : 0.0f;
  }
}

/// tile[r * kStride + c] = <a_r, b_c> over headDim, for the block's threads.
__device__ void dots(const float *a, const float *b, int64_t headDim,
                     float *tile) {
  for (int i = threadIdx.x; i < kTile * kTile; i += blockDim.x) {
    int r = i / kTile, c = i % kTile;
    float dot = 0;
    for (int64_t d = 0; d < headDim; ++d)
      dot += a[r * headDim + d] * b[c * headDim + d];
    tile[r * kStride + c] = dot;
  }
}

/// Loads key tile `firstKey` of the query kernel's KV head, then its
/// scores against the block's queries and <dO_i, v_j> against its output
/// gradients.
__device__ void keyTile(const Args &a, int64_t kvOffset, int64_t firstKey,
                        const float *queries,
                        const float *grads, float *keys, float *values,
                        float *scores, float *products) {
  int64_t kvStride = a.kvHeads * a.headDim;
  __syncthreads(); // the previous tile is no longer read
  load(a.k + kvOffset, firstKey, a.seq, kvStride, a.headDim, a.bf16,
       keys);
  load(a.v + kvOffset, firstKey, a.seq, kvStride, a.headDim, a.bf16,
       values);
  __syncthreads();
  dots(queries, keys, a.headDim, scores);
  dots(grads, values, a.headDim, products);
  __syncthreads();
}

__device__ bool visible(const Args &a, int64_t query, int64_t key) {
  return query < a.seq && key < a.seq && !(a.causal && key > query);
}

/// Query tiles: each row's logsumexp and D, then dq.
__global__ void __launch_bounds__(kAttentionThreads)
    queryGradKernel(Args a) {
  extern __shared__ float shared[];
  int64_t hd = a.headDim;
  float *queries = shared, *grads = queries + kTile * hd,
        *keys = grads + kTile * hd, *values = keys + kTile * hd,
        *scores = values + kTile * hd, *products = scores + kTile * kStride;
  int64_t firstQuery = int64_t(blockIdx.x) * kTile;
  int64_t batch = blockIdx.y / a.heads, head = blockIdx.y % a.heads;
  int64_t kvHead = head / (a.heads / a.kvHeads);
  int64_t qStride = a.heads * hd, kvStride = a.kvHeads * hd;
  int64_t qOffset = batch * a.seq * qStride + head * hd;
  int64_t kvOffset = batch * a.seq * kvStride + kvHead * hd;
  load(a.q + qOffset, firstQuery, a.seq, qStride, hd, a.bf16, queries);
  load(a.dout + qOffset, firstQuery, a.seq, qStride, hd, a.bf16, grads);

  int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  int64_t query = firstQuery + row;
  int64_t keysEnd = a.causal ? min(a.seq, firstQuery + kTile) : a.seq;
  SoftmaxRow state;
  float delta = 0; // sum of exp(s - largest) <dO, v>, rescaled as it goes
  for (int64_t firstKey = 0; firstKey < keysEnd; firstKey += kTile) {
    keyTile(a, kvOffset, firstKey, queries, grads, keys, values,
            scores, products);
    float largest = -INFINITY;
    for (int c = 0; c < kTile; ++c)
      if (visible(a, query, firstKey + c))
        largest = fmaxf(largest, scores[row * kStride + c] * a.scale);
    delta *= softmaxRescale(state, largest);
    for (int c = 0; c < kTile; ++c) {
      float s = visible(a, query, firstKey + c)
                    ? scores[row * kStride + c] * a.scale
                    : -INFINITY;
      delta += softmaxWeight(state, s) * products[row * kStride + c];
    }
  }
  float lse = state.total > 0 ? state.largest + logf(state.total) : INFINITY;
  delta *= softmaxFinish(state);
  if (query < a.seq && lane == 0) {
    int64_t at = (batch * a.heads + head) * a.seq + query;
    a.lse[at] = lse;
    a.delta[at] = delta;
  }

  float accumulated[kDimsPerLane] = {};
  for (int64_t firstKey = 0; firstKey < keysEnd; firstKey += kTile) {
    keyTile(a, kvOffset, firstKey, queries, grads, keys, values,
            scores, products);
    for (int c = 0; c < kTile; ++c) {
      if (!visible(a, query, firstKey + c))
        continue;
      float p = expf(scores[row * kStride + c] * a.scale - lse);
      float dS = operand(p * (products[row * kStride + c] - delta), a.bf16);
      for (int j = 0; j < kDimsPerLane; ++j) {
        int64_t d = lane + int64_t(j) * kLanes;
        if (d < hd)
          accumulated[j] += dS * keys[c * hd + d];
      }
    }
  }
  if (query >= a.seq)
    return;
  float *out = a.dq + qOffset + query * qStride;
  for (int j = 0; j < kDimsPerLane; ++j) {
    int64_t d = lane + int64_t(j) * kLanes;
    if (d < hd)
      out[d] = accumulated[j] * a.scale;
  }
}

/// Key tiles of one KV head: dk and dv over its query heads, in order.
__global__ void __launch_bounds__(kAttentionThreads)
    keyGradKernel(Args a) {
  extern __shared__ float shared[];
  int64_t hd = a.headDim;
  float *keys = shared, *values = keys + kTile * hd,
        *queries = values + kTile * hd, *grads = queries + kTile * hd,
        *scores = grads + kTile * hd, *products = scores + kTile * kStride;
  __shared__ float rowLse[kTile], rowDelta[kTile];
  int64_t firstKey = int64_t(blockIdx.x) * kTile;
  int64_t batch = blockIdx.y / a.kvHeads, kvHead = blockIdx.y % a.kvHeads;
  int64_t group = a.heads / a.kvHeads;
  int64_t qStride = a.heads * hd, kvStride = a.kvHeads * hd;
  int64_t kvOffset = batch * a.seq * kvStride + kvHead * hd;
  load(a.k + kvOffset, firstKey, a.seq, kvStride, hd, a.bf16, keys);
  load(a.v + kvOffset, firstKey, a.seq, kvStride, hd, a.bf16, values);

  int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes; // a key row
  int64_t key = firstKey + row;
  float dkSum[kDimsPerLane] = {}, dvSum[kDimsPerLane] = {};
  // Causal: only queries at or after this tile's first key see it.
  int64_t firstTile = a.causal ? firstKey / kTile : 0;
  for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
    int64_t qOffset = batch * a.seq * qStride + h * hd;
    for (int64_t firstQuery = firstTile * kTile; firstQuery < a.seq;
         firstQuery += kTile) {
      __syncthreads();
      load(a.q + qOffset, firstQuery, a.seq, qStride, hd, a.bf16,
           queries);
      load(a.dout + qOffset, firstQuery, a.seq, qStride, hd, a.bf16,
           grads);
      if (threadIdx.x < kTile) {
        int64_t query = firstQuery + threadIdx.x;
        int64_t at = (batch * a.heads + h) * a.seq + query;
        rowLse[threadIdx.x] = query < a.seq ? a.lse[at] : INFINITY;
        rowDelta[threadIdx.x] = query < a.seq ? a.delta[at] : 0.0f;
      }
      __syncthreads();
      // Scores and <dO_i, v_j> with keys as rows: tile[j][i].
      dots(keys, queries, hd, scores);
      dots(values, grads, hd, products);
      __syncthreads();
      for (int i = 0; i < kTile; ++i) {
        int64_t query = firstQuery + i;
        if (!visible(a, query, key))
          continue;
        float p = expf(scores[row * kStride + i] * a.scale - rowLse[i]);
        float dS = p * (products[row * kStride + i] - rowDelta[i]);
        float pRounded = operand(p, a.bf16), dSRounded = operand(dS, a.bf16);
        for (int j = 0; j < kDimsPerLane; ++j) {
          int64_t d = lane + int64_t(j) * kLanes;
          if (d < hd) {
            dvSum[j] += pRounded * grads[i * hd + d];
            dkSum[j] += dSRounded * queries[i * hd + d];
          }
        }
      }
    }
  }
  if (key >= a.seq)
    return;
  float *dk = a.dk + kvOffset + key * kvStride,
        *dv = a.dv + kvOffset + key * kvStride;
  for (int j = 0; j < kDimsPerLane; ++j) {
    int64_t d = lane + int64_t(j) * kLanes;
    if (d < hd) {
      dk[d] = dkSum[j] * a.scale;
      dv[d] = dvSum[j];
    }
  }
}

} // namespace

cudaError_t attentionGrad(const float *q, const float *k, const float *v,
                          const float *dout, int64_t batch, int64_t seq,
                          int64_t heads, int64_t kvHeads, int64_t headDim,
                          bool causal, float scale, bool bf16, float *dq,
                          float *dk, float *dv, float *lse, float *delta,
                          cudaStream_t stream) {
  int64_t most = attentionGradSharedBytes(kMaxAttentionHeadDim);
  for (cudaError_t error : {optInSharedMemory(queryGradKernel, most),
                            optInSharedMemory(keyGradKernel, most)})
    if (error != cudaSuccess)
      return error;
  Args args{q,     k,   v,     dout,    dq,      dk,     dv,    lse,
            delta, seq, heads, kvHeads, headDim, causal, scale, bf16};
  auto [queries, keys] =
      attentionGradShapes(batch, seq, heads, kvHeads, headDim);
  if (cudaError_t error = launchWith(queries, stream, queryGradKernel, args);
      error != cudaSuccess)
    return error;
  return launchWith(keys, stream, keyGradKernel, args);
}

} // namespace moert::cuda
