//===- Attention.cpp - causal grouped-query attention ---------------------===//
//
// One task per (batch, query head), spread over the threads. A task packs
// its KV head's keys (transposed) and values contiguously, then takes the
// queries kRows at a time: scores against the visible keys by a register-
// tiled GEMM, the softmax of those rows, and their product with the values.
// Keys past a causal block's last row are never touched. Each output row is
// computed by one task in a fixed order, so the result does not depend on
// the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/AttentionBlocks.h"
#include "runtime/cpu/Kernels.h"

#include <type_traits>

namespace moert::cpu {
namespace {
using namespace attention_blocks;

/// One query head: q, out at its first row, k and v at its KV head's.
MOERT_ISA_CLONES
void attendHead(const HeadShape &s, const float *q, const float *k, const float *v,
                float *out) {
  int64_t keys = s.keys, dim = s.dim;
  // The scale goes into the packed keys, so the scores come out scaled.
  float *keysT =
      scratch(s.headDim * keys + keys * dim + kRows * (keys + 2 * dim));
  float *values = keysT + s.headDim * keys, *queries = values + keys * dim;
  float *scores = queries + kRows * dim, *outputs = scores + kRows * keys;
  packColumns(k, s.kvStride, s.seq, s.headDim, s.scale, keysT, keys);
  packRows(v, s.kvStride, s.seq, s.headDim, values, keys, dim);
  for (int64_t first = 0; first < s.seq; first += kRows) {
    int64_t rows = std::min(kRows, s.seq - first), tileRows = roundUp(rows, 4);
    int64_t width = roundUp(s.causal ? first + rows : s.seq, kLanes);
    packRows(q + first * s.qStride, s.qStride, rows, s.headDim, queries,
             tileRows, dim);
    gemm<false>(s.width, tileRows, width, s.headDim, queries, dim, 1, keysT,
                keys, scores, keys);
    softmaxRows(scores, keys, tileRows, first, s.seq, s.causal, width);
    gemm<false>(s.width, tileRows, dim, width, scores, keys, 1, values, dim,
                outputs, dim);
    unpackRows(outputs, dim, rows, s.headDim, out + first * s.qStride,
               s.qStride);
  }
}

/// Every (batch, query head) task, on bf16 products where `bf16Products`
/// (always for activations stored as bf16).
template <typename T, typename O>
void attendAllHeads(const T *q, const T *k, const T *v, int64_t batch,
                    int64_t seq, int64_t heads, int64_t kvHeads,
                    int64_t headDim, bool causal, double scale, O *out,
                    bool bf16Products) {
  int64_t group = heads / kvHeads;
  HeadShape s =
      HeadShape::of(seq, heads, kvHeads, headDim, causal, float(scale));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t kvOffset = b * seq * s.kvStride + (h / group) * headDim;
      int64_t qOffset = b * seq * s.qStride + h * headDim;
      if constexpr (std::is_same_v<T, float>)
        if (!bf16Products) {
          attendHead(s, q + qOffset, k + kvOffset, v + kvOffset,
                     out + qOffset);
          continue;
        }
      attentionBf16Head(s, q + qOffset, k + kvOffset, v + kvOffset,
                        out + qOffset);
    }
}
} // namespace

void attention(const float *q, const float *k, const float *v, int64_t batch,
               int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
               bool causal, double scale, float *out, bool bf16) {
  attendAllHeads(q, k, v, batch, seq, heads, kvHeads, headDim, causal, scale,
                 out, bf16 && attentionBf16IsNative(headDim));
}

void attentionStoredBf16(const uint16_t *q, const uint16_t *k,
                         const uint16_t *v, int64_t batch, int64_t seq,
                         int64_t heads, int64_t kvHeads, int64_t headDim,
                         bool causal, double scale, uint16_t *out) {
  attendAllHeads(q, k, v, batch, seq, heads, kvHeads, headDim, causal, scale,
                 out, true);
}

bool bf16AttentionIsNative(int64_t headDim) {
  return attentionBf16IsNative(headDim);
}

} // namespace moert::cpu
