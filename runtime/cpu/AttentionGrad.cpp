//===- AttentionGrad.cpp - backward of grouped-query attention ------------===//
//
// One task per (batch, query head), as the forward pass, kRows queries at a
// time: the block's probabilities P are recomputed from q and k, then
//   dP = dO v^T,  dS = P * (dP - rowsum(P * dP)) * scale,
//   dq = dS k,  dk += dS^T q,  dv += P^T dO,
// each a register-tiled GEMM over the visible keys only. When KV heads are
// shared, each query head writes its own partial dk and dv, added
// afterwards in head order, so nothing depends on the thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/AttentionBlocks.h"
#include "runtime/cpu/Grad.h"

#include <type_traits>
#include <vector>

namespace moert::cpu {
namespace {
using namespace attention_blocks;

/// One query head: q, dOut, dq at its first row, k and v at its KV head's;
/// dk and dv get this head's share, rows `dkvStride` apart.
MOERT_ISA_CLONES
void backwardHead(const HeadShape &s, const float *q, const float *k,
                  const float *v, const float *dOut, float *dq, float *dk,
                  float *dv, int64_t dkvStride) {
  int64_t keys = s.keys, dim = s.dim, packed = keys * dim;
  // The KV head packed both ways, its dk and dv, and one query block.
  float *keyRows =
      scratch(3 * packed + 2 * s.headDim * keys + kRows * (3 * dim + 2 * keys));
  float *dKeys = keyRows + packed, *dValues = dKeys + packed;
  float *keysT = dValues + packed, *valuesT = keysT + s.headDim * keys;
  float *queries = valuesT + s.headDim * keys,
        *dOutRows = queries + kRows * dim;
  float *dQueries = dOutRows + kRows * dim, *probs = dQueries + kRows * dim;
  float *dScores = probs + kRows * keys;
  packRows(k, s.kvStride, s.seq, s.headDim, keyRows, keys, dim);
  // The scale goes into the packed keys, so the scores come out scaled.
  packColumns(k, s.kvStride, s.seq, s.headDim, s.scale, keysT, keys);
  packColumns(v, s.kvStride, s.seq, s.headDim, 1.0f, valuesT, keys);
  std::fill(dKeys, dKeys + 2 * packed, 0.0f); // and dValues
  for (int64_t first = 0; first < s.seq; first += kRows) {
    int64_t rows = std::min(kRows, s.seq - first), tileRows = roundUp(rows, 4);
    int64_t width = roundUp(s.causal ? first + rows : s.seq, kLanes);
    packRows(q + first * s.qStride, s.qStride, rows, s.headDim, queries,
             tileRows, dim);
    packRows(dOut + first * s.qStride, s.qStride, rows, s.headDim, dOutRows,
             tileRows, dim);
    gemm<false>(s.width, tileRows, width, s.headDim, queries, dim, 1, keysT,
                keys, probs, keys);
    softmaxRows(probs, keys, tileRows, first, s.seq, s.causal, width);
    gemm<false>(s.width, tileRows, width, s.headDim, dOutRows, dim, 1, valuesT,
                keys, dScores, keys);
    scoreGradRows(probs, dScores, keys, tileRows, width, s.scale);
    gemm<false>(s.width, tileRows, dim, width, dScores, keys, 1, keyRows, dim,
                dQueries, dim);
    unpackRows(dQueries, dim, rows, s.headDim, dq + first * s.qStride,
               s.qStride);
    // Transposed A: row j of dS^T is column j of dS.
    gemm<true>(s.width, width, dim, tileRows, dScores, 1, keys, queries, dim,
               dKeys, dim);
    gemm<true>(s.width, width, dim, tileRows, probs, 1, keys, dOutRows, dim,
               dValues, dim);
  }
  unpackRows(dKeys, dim, s.seq, s.headDim, dk, dkvStride);
  unpackRows(dValues, dim, s.seq, s.headDim, dv, dkvStride);
}

/// y += x.
void accumulate(const float *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t t = 0; t < n; ++t)
    y[t] += x[t];
}

/// attentionGrad over q, k, v fp32 or stored as bf16 (then always on bf16
/// products).
template <typename T>
void attentionGradOf(const T *q, const T *k, const T *v, const float *dOut,
                     int64_t batch, int64_t seq, int64_t heads,
                     int64_t kvHeads, int64_t headDim, bool causal,
                     double scale, float *dq, float *dk, float *dv,
                     bool bf16Products) {
  int64_t group = heads / kvHeads;
  HeadShape s =
      HeadShape::of(seq, heads, kvHeads, headDim, causal, float(scale));
  // With shared KV heads, per (batch, query head) dk and dv [B, H, S, Dh],
  // reduced over the group at the end.
  std::vector<float> dkPartial, dvPartial;
  if (group > 1) {
    dkPartial.resize(size_t(batch * heads * seq * headDim));
    dvPartial.resize(dkPartial.size());
  }
#pragma omp parallel
  {
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t kvOffset = b * seq * s.kvStride + (h / group) * headDim;
        int64_t qOffset = b * seq * s.qStride + h * headDim;
        float *dKey = dk + kvOffset, *dValue = dv + kvOffset;
        int64_t dkvStride = s.kvStride;
        if (group > 1) {
          int64_t partial = (b * heads + h) * seq * headDim;
          dKey = dkPartial.data() + partial;
          dValue = dvPartial.data() + partial;
          dkvStride = headDim;
        }
        if constexpr (std::is_same_v<T, float>)
          if (!bf16Products) {
            backwardHead(s, q + qOffset, k + kvOffset, v + kvOffset,
                         dOut + qOffset, dq + qOffset, dKey, dValue,
                         dkvStride);
            continue;
          }
        attentionGradBf16Head(s, q + qOffset, k + kvOffset, v + kvOffset,
                              dOut + qOffset, dq + qOffset, dKey, dValue,
                              dkvStride);
      }
    if (group > 1) {
#pragma omp for collapse(3) schedule(static)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t j = 0; j < seq; ++j)
          for (int64_t kvHead = 0; kvHead < kvHeads; ++kvHead) {
            float *dKey = dk + (b * seq + j) * s.kvStride + kvHead * headDim;
            float *dValue = dv + (b * seq + j) * s.kvStride + kvHead * headDim;
            std::fill(dKey, dKey + headDim, 0.0f);
            std::fill(dValue, dValue + headDim, 0.0f);
            for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
              int64_t offset = ((b * heads + h) * seq + j) * headDim;
              accumulate(dkPartial.data() + offset, dKey, headDim);
              accumulate(dvPartial.data() + offset, dValue, headDim);
            }
          }
    }
  }
}
} // namespace

void attentionGrad(const float *q, const float *k, const float *v,
                   const float *dOut, int64_t batch, int64_t seq, int64_t heads,
                   int64_t kvHeads, int64_t headDim, bool causal, double scale,
                   float *dq, float *dk, float *dv, bool bf16) {
  attentionGradOf(q, k, v, dOut, batch, seq, heads, kvHeads, headDim, causal,
                  scale, dq, dk, dv, bf16 && attentionBf16IsNative(headDim));
}

void attentionGradStoredBf16(const uint16_t *q, const uint16_t *k,
                             const uint16_t *v, const float *dOut,
                             int64_t batch, int64_t seq, int64_t heads,
                             int64_t kvHeads, int64_t headDim, bool causal,
                             double scale, float *dq, float *dk, float *dv) {
  attentionGradOf(q, k, v, dOut, batch, seq, heads, kvHeads, headDim, causal,
                  scale, dq, dk, dv, true);
}

} // namespace moert::cpu
