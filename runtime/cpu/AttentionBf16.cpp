//===- AttentionBf16.cpp - attention and its backward on bf16 products ----===//
//
// The blocked attention of Attention.cpp and AttentionGrad.cpp, with every
// product taken as AVX512-BF16 dot products of bf16 pairs accumulating in
// fp32 (vdpbf16ps): q, k, v, dO, the probabilities and dS are rounded to
// bf16 on the way into each product, as mixed-precision attention computes
// them; the softmax and dS themselves stay fp32. It runs for models compiled
// with bf16 compute, on CPUs with AVX512-BF16.
//
// Operands are packed as 32-bit pairs of bf16 along the reduction ("depth")
// dimension: an A operand as pairs within its rows, a B operand as rows of
// pairs taken from two consecutive depth rows. Work split, masking and
// padding are those of the fp32 kernels; each sum runs in a fixed order (the
// products of a pair added together), so results do not depend on the
// thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/AttentionBlocks.h"

#include <immintrin.h>
#include <type_traits>

namespace moert::cpu {
namespace {
using namespace attention_blocks;

#define MOERT_BF16_TARGET                                                      \
  gnu::target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")
#define MOERT_BF16_INLINE [[gnu::always_inline, MOERT_BF16_TARGET]] inline

/// A value's bf16 bits: fp32 rounded, or an activation stored as bf16.
MOERT_BF16_INLINE uint16_t bf16Bits(float value) { return floatToBf16(value); }
MOERT_BF16_INLINE uint16_t bf16Bits(uint16_t value) { return value; }

/// The pair (lo, hi) as bf16, lo in the low half.
template <typename T> MOERT_BF16_INLINE uint32_t pairOf(T lo, T hi) {
  return uint32_t(bf16Bits(lo)) | uint32_t(bf16Bits(hi)) << 16;
}

/// The first `count` rows, `width` columns of packed [*, ldPacked] out to
/// rows `stride` apart, rounded where they are stored as bf16.
template <typename O>
MOERT_BF16_INLINE void storeRows(const float *packed, int64_t ldPacked,
                                 int64_t count, int64_t width, O *rows,
                                 int64_t stride) {
  if constexpr (std::is_same_v<O, float>) {
    unpackRows(packed, ldPacked, count, width, rows, stride);
  } else {
    for (int64_t i = 0; i < count; ++i)
#pragma omp simd
      for (int64_t j = 0; j < width; ++j)
        rows[i * stride + j] = floatToBf16(packed[i * ldPacked + j]);
  }
}

/// A operand with pairs along rows: out[i, p] = (rows[i, 2p], rows[i, 2p+1])
/// for i < count, 2p < width; zeros up to [countPadded, pairsPadded].
template <typename T>
MOERT_BF16_INLINE void pairsAlongRows(const T *rows, int64_t stride,
                                      int64_t count, int64_t width,
                                      uint32_t *out, int64_t countPadded,
                                      int64_t pairsPadded) {
  int64_t pairs = width / 2;
  for (int64_t i = 0; i < countPadded; ++i) {
    uint32_t *to = out + i * pairsPadded;
    int64_t filled = i < count ? pairs : 0;
    const T *from = rows + i * stride;
#pragma omp simd
    for (int64_t p = 0; p < filled; ++p)
      to[p] = pairOf(from[2 * p], from[2 * p + 1]);
    std::fill(to + filled, to + pairsPadded, 0u);
  }
}

/// B operand whose depth runs down the rows: out[p, j] = (rows[2p, j],
/// rows[2p+1, j]) for j < width; rows past count and columns past width up
/// to [pairsPadded, widthPadded] are zeros.
template <typename T>
MOERT_BF16_INLINE void pairsAcrossRows(const T *rows, int64_t stride,
                                       int64_t count, int64_t width,
                                       uint32_t *out, int64_t pairsPadded,
                                       int64_t widthPadded) {
  for (int64_t p = 0; p < pairsPadded; ++p) {
    uint32_t *to = out + p * widthPadded;
    int64_t filled = 2 * p < count ? width : 0;
    const T *even = rows + 2 * p * stride;
    if (2 * p + 1 < count) {
      const T *odd = even + stride;
#pragma omp simd
      for (int64_t j = 0; j < filled; ++j)
        to[j] = pairOf(even[j], odd[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < filled; ++j)
        to[j] = pairOf(even[j], T(0));
    }
    std::fill(to + filled, to + widthPadded, 0u);
  }
}

/// B operand whose depth runs along the source's rows (a transposed
/// operand): out[p, j] = (rows[j, 2p], rows[j, 2p+1]) for j < count;
/// zeros for j up to countPadded. Sixteen source rows at a time are rounded
/// into a small block, then written out a column of pairs at a time.
template <typename T>
MOERT_BF16_INLINE void pairsTransposed(const T *rows, int64_t stride,
                                       int64_t count, int64_t width,
                                       uint32_t *out,
                                       int64_t countPadded) {
  int64_t pairs = width / 2;
  constexpr int64_t kBlock = 16;
  uint32_t block[kBlock][128];
  for (int64_t first = 0; first < countPadded; first += kBlock) {
    for (int64_t p0 = 0; p0 < pairs; p0 += 128) {
      int64_t n = std::min<int64_t>(128, pairs - p0);
      for (int64_t i = 0; i < kBlock; ++i) {
        int64_t j = first + i;
        if (j >= count) {
          std::fill(block[i], block[i] + n, 0u);
          continue;
        }
        const T *from = rows + j * stride + 2 * p0;
#pragma omp simd
        for (int64_t p = 0; p < n; ++p)
          block[i][p] = pairOf(from[2 * p], from[2 * p + 1]);
      }
      for (int64_t p = 0; p < n; ++p) {
        uint32_t *to = out + (p0 + p) * countPadded + first;
#pragma omp simd
        for (int64_t i = 0; i < kBlock; ++i)
          to[i] = block[i][p];
      }
    }
  }
}

/// C[4, C*16] (+)= sum over pairs t of A(r, t) . B[t, 0:C*16) with A(r, t) =
/// a[r * aRow + t * aCol]: 4 x C accumulators held in registers.
template <int C, bool Accumulate>
MOERT_BF16_INLINE void pairTile(const uint32_t *a, int64_t aRow, int64_t aCol,
                                const uint32_t *b, int64_t ldb, int64_t pairs,
                                float *c, int64_t ldc) {
  __m512 acc[4][C];
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < C; ++j)
      acc[r][j] = Accumulate ? _mm512_loadu_ps(c + r * ldc + j * 16)
                             : _mm512_setzero_ps();
  for (int64_t t = 0; t < pairs; ++t) {
    __m512bh row[C];
    for (int j = 0; j < C; ++j)
      row[j] = __m512bh(_mm512_loadu_si512(b + t * ldb + j * 16));
    for (int r = 0; r < 4; ++r) {
      __m512bh x = __m512bh(_mm512_set1_epi32(int(a[r * aRow + t * aCol])));
      for (int j = 0; j < C; ++j)
        acc[r][j] = _mm512_dpbf16_ps(acc[r][j], x, row[j]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < C; ++j)
      _mm512_storeu_ps(c + r * ldc + j * 16, acc[r][j]);
}

/// C[m, n] (+)= A[m, 2 pairs] B[2 pairs, n]; m a multiple of 4, n of 16.
template <bool Accumulate>
MOERT_BF16_INLINE void
pairGemm(int64_t m, int64_t n, int64_t pairs, const uint32_t *a, int64_t aRow,
         int64_t aCol, const uint32_t *b, int64_t ldb, float *c, int64_t ldc) {
  for (int64_t r = 0; r < m; r += 4) {
    int64_t j = 0;
    for (; j + 64 <= n; j += 64)
      pairTile<4, Accumulate>(a + r * aRow, aRow, aCol, b + j, ldb, pairs,
                              c + r * ldc + j, ldc);
    for (; j < n; j += 16)
      pairTile<1, Accumulate>(a + r * aRow, aRow, aCol, b + j, ldb, pairs,
                              c + r * ldc + j, ldc);
  }
}

/// scores[r, j] *= scale for r < rows, j < width: the softmax scale is
/// applied to the fp32 scores rather than folded into the rounded keys, so
/// that a key is rounded to bf16 as it is, as a key stored as bf16 is.
MOERT_BF16_INLINE void scaleScores(float *scores, int64_t ld, int64_t rows,
                                   int64_t width, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float *row = scores + r * ld;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      row[j] *= scale;
  }
}

/// This thread's buffer of at least n packed pairs (Scratch.h).
struct PairScratch;
uint32_t *pairScratch(size_t n) {
  return threadScratch<uint32_t, PairScratch>(n);
}

/// One query head forward, as Attention.cpp's attendHead; q, k, v and out
/// fp32 or stored as bf16.
template <typename T, typename O>
[[MOERT_BF16_TARGET]] void attendHead(const HeadShape &s, const T *q,
                                      const T *k, const T *v, O *out) {
  int64_t keys = s.keys, dim = s.dim, depth = s.headDim / 2;
  uint32_t *keysT =
      pairScratch(depth * keys + (keys / 2) * dim + kRows * (depth + keys / 2));
  uint32_t *values = keysT + depth * keys, *queries = values + (keys / 2) * dim;
  uint32_t *probs = queries + kRows * depth;
  float *scores = scratch(kRows * (keys + dim)),
        *outputs = scores + kRows * keys;
  pairsTransposed(k, s.kvStride, s.seq, s.headDim, keysT, keys);
  pairsAcrossRows(v, s.kvStride, s.seq, s.headDim, values, keys / 2, dim);
  for (int64_t first = 0; first < s.seq; first += kRows) {
    int64_t rows = std::min(kRows, s.seq - first), tileRows = roundUp(rows, 4);
    int64_t width = roundUp(s.causal ? first + rows : s.seq, kLanes);
    pairsAlongRows(q + first * s.qStride, s.qStride, rows, s.headDim,
                   queries, tileRows, depth);
    pairGemm<false>(tileRows, width, depth, queries, depth, 1, keysT, keys,
                    scores, keys);
    scaleScores(scores, keys, tileRows, width, s.scale);
    softmaxRows(scores, keys, tileRows, first, s.seq, s.causal, width);
    pairsAlongRows(scores, keys, tileRows, width, probs, tileRows,
                   keys / 2);
    pairGemm<false>(tileRows, dim, width / 2, probs, keys / 2, 1, values, dim,
                    outputs, dim);
    storeRows(outputs, dim, rows, s.headDim, out + first * s.qStride,
              s.qStride);
  }
}

/// One query head backward, as AttentionGrad.cpp's backwardHead; q, k and v
/// fp32 or stored as bf16.
template <typename T>
[[MOERT_BF16_TARGET]] void backwardHead(const HeadShape &s, const T *q,
                                        const T *k, const T *v,
                                        const float *dOut, float *dq, float *dk,
                                        float *dv, int64_t dkvStride) {
  int64_t keys = s.keys, dim = s.dim, depth = s.headDim / 2;
  int64_t blockPairs = kRows / 2;
  // K packed for the scores and for dq, V for dP; per block: q and
  // dO as A (pairs along rows) and as B (pairs across rows), dS and P
  // transposed as A (pairs across rows), dS as A.
  uint32_t *keysT = pairScratch(2 * depth * keys + (keys / 2) * dim +
                                kRows * 2 * depth + 2 * blockPairs * dim +
                                2 * blockPairs * keys + kRows * (keys / 2));
  uint32_t *valuesT = keysT + depth * keys, *keyPairs = valuesT + depth * keys;
  uint32_t *queries = keyPairs + (keys / 2) * dim;
  uint32_t *dOutRows = queries + kRows * depth;
  uint32_t *queryPairs = dOutRows + kRows * depth;
  uint32_t *dOutPairs = queryPairs + blockPairs * dim;
  uint32_t *dScoresT = dOutPairs + blockPairs * dim;
  uint32_t *probsT = dScoresT + blockPairs * keys;
  uint32_t *dScoresA = probsT + blockPairs * keys;
  float *dKeys = scratch(2 * keys * dim + kRows * (2 * keys + dim));
  float *dValues = dKeys + keys * dim, *probs = dValues + keys * dim;
  float *dScores = probs + kRows * keys, *dQueries = dScores + kRows * keys;
  pairsTransposed(k, s.kvStride, s.seq, s.headDim, keysT, keys);
  pairsTransposed(v, s.kvStride, s.seq, s.headDim, valuesT, keys);
  pairsAcrossRows(k, s.kvStride, s.seq, s.headDim, keyPairs, keys / 2, dim);
  std::fill(dKeys, dKeys + 2 * keys * dim, 0.0f); // and dValues
  for (int64_t first = 0; first < s.seq; first += kRows) {
    int64_t rows = std::min(kRows, s.seq - first), tileRows = roundUp(rows, 4);
    int64_t width = roundUp(s.causal ? first + rows : s.seq, kLanes);
    const T *qBlock = q + first * s.qStride;
    const float *dOutBlock = dOut + first * s.qStride;
    pairsAlongRows(qBlock, s.qStride, rows, s.headDim, queries, tileRows,
                   depth);
    pairsAlongRows(dOutBlock, s.qStride, rows, s.headDim, dOutRows,
                   tileRows, depth);
    pairGemm<false>(tileRows, width, depth, queries, depth, 1, keysT, keys,
                    probs, keys);
    scaleScores(probs, keys, tileRows, width, s.scale);
    softmaxRows(probs, keys, tileRows, first, s.seq, s.causal, width);
    pairGemm<false>(tileRows, width, depth, dOutRows, depth, 1, valuesT, keys,
                    dScores, keys);
    scoreGradRows(probs, dScores, keys, tileRows, width, s.scale);
    // dq = dS k.
    pairsAlongRows(dScores, keys, tileRows, width, dScoresA, tileRows,
                   keys / 2);
    pairGemm<false>(tileRows, dim, width / 2, dScoresA, keys / 2, 1, keyPairs,
                    dim, dQueries, dim);
    unpackRows(dQueries, dim, rows, s.headDim, dq + first * s.qStride,
               s.qStride);
    // dk += dS^T q and dv += P^T dO: row j of dS^T is column j of dS, so
    // the A operands pair consecutive query rows.
    int64_t pairs = tileRows / 2;
    pairsAcrossRows(dScores, keys, tileRows, width, dScoresT, pairs, keys);
    pairsAcrossRows(probs, keys, tileRows, width, probsT, pairs, keys);
    pairsAcrossRows(qBlock, s.qStride, rows, s.headDim, queryPairs, pairs, dim);
    pairsAcrossRows(dOutBlock, s.qStride, rows, s.headDim, dOutPairs, pairs,
                    dim);
    pairGemm<true>(width, dim, pairs, dScoresT, 1, keys, queryPairs, dim, dKeys,
                   dim);
    pairGemm<true>(width, dim, pairs, probsT, 1, keys, dOutPairs, dim, dValues,
                   dim);
  }
  unpackRows(dKeys, dim, s.seq, s.headDim, dk, dkvStride);
  unpackRows(dValues, dim, s.seq, s.headDim, dv, dkvStride);
}
} // namespace

namespace attention_blocks {
bool attentionBf16IsNative(int64_t headDim) {
  return cpuHasAvx512Bf16() && headDim % 2 == 0;
}

void attentionBf16Head(const HeadShape &s, const float *q, const float *k,
                       const float *v, float *out) {
  attendHead(s, q, k, v, out);
}

void attentionBf16Head(const HeadShape &s, const uint16_t *q,
                       const uint16_t *k, const uint16_t *v, uint16_t *out) {
  attendHead(s, q, k, v, out);
}

void attentionGradBf16Head(const HeadShape &s, const float *q, const float *k,
                           const float *v, const float *dOut, float *dq,
                           float *dk, float *dv, int64_t dkvStride) {
  backwardHead(s, q, k, v, dOut, dq, dk, dv, dkvStride);
}

void attentionGradBf16Head(const HeadShape &s, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v,
                           const float *dOut, float *dq, float *dk, float *dv,
                           int64_t dkvStride) {
  backwardHead(s, q, k, v, dOut, dq, dk, dv, dkvStride);
}
} // namespace attention_blocks

} // namespace moert::cpu
