//===- AttentionBlocks.h - blocked attention kernels ------------*- C++ -*-===//
//
// What the attention forward and backward share: one head's keys and values
// packed contiguously (zero padded to whole vectors), a small GEMM on such
// blocks, and the masked softmax of a block of score rows.
//
// The build targets baseline x86-64, so these run inside functions compiled
// with MOERT_ISA_CLONES (one clone per ISA, picked at load time) or for
// AVX512-BF16 (AttentionBf16.cpp). They must be inlined there to use those
// instructions, hence always_inline; they take no vector arguments, which
// would change the ABI between clones.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_ATTENTIONBLOCKS_H
#define MOERT_CPU_ATTENTIONBLOCKS_H

#include "runtime/cpu/GradMath.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Scratch.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace moert::cpu::attention_blocks {

/// Rows and columns are padded to whole kLanes: one AVX-512 register.
constexpr int64_t kLanes = 16;
/// Query rows per block: the scores of a block against all keys stay in L2.
constexpr int64_t kRows = 32;

inline int64_t roundUp(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

/// The vector width, in floats, of the clone the loader picked: GCC lowers
/// wider generic vectors badly, so each clone takes tiles of its own width.
inline int vectorWidth() {
  static const int width = __builtin_cpu_supports("x86-64-v4")   ? 16
                           : __builtin_cpu_supports("x86-64-v3") ? 8
                                                                 : 4;
  return width;
}

/// C[R, C*W] (+)= sum over t < depth of A(r, t) * B[t, 0:C*W) with
/// A(r, t) = a[r * aRow + t * aCol]: a tile of R x C vectors of W floats
/// held in registers.
template <int W, int R, int C, bool Accumulate>
MOERT_ISA_INLINE void tile(const float *a, int64_t aRow, int64_t aCol,
                           const float *b, int64_t ldb, int64_t depth, float *c,
                           int64_t ldc) {
  typedef float Vec __attribute__((vector_size(W * sizeof(float))));
  Vec acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C; ++j) {
      if (Accumulate)
        std::memcpy(&acc[r][j], c + r * ldc + j * W, sizeof(Vec));
      else
        acc[r][j] = Vec{};
    }
  for (int64_t t = 0; t < depth; ++t) {
    Vec row[C];
    for (int j = 0; j < C; ++j)
      std::memcpy(&row[j], b + t * ldb + j * W, sizeof(Vec));
    for (int r = 0; r < R; ++r) {
      Vec x = a[r * aRow + t * aCol] - Vec{}; // a broadcast; + would not fold
      for (int j = 0; j < C; ++j)
        acc[r][j] += x * row[j];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C; ++j)
      std::memcpy(c + r * ldc + j * W, &acc[r][j], sizeof(Vec));
}

/// C[m, n] (+)= A[m, depth] B[depth, n] with A(r, t) = a[r * aRow + t *
/// aCol], B row-major; m a multiple of 4, n of kLanes. `width`:
/// vectorWidth(). Tiles of 4 x 64 floats need AVX-512's 32 registers; 4 x
/// 16 and 4 x 8 fit AVX2's and SSE's 16.
template <bool Accumulate>
MOERT_ISA_INLINE void gemm(int width, int64_t m, int64_t n, int64_t depth,
                           const float *a, int64_t aRow, int64_t aCol,
                           const float *b, int64_t ldb, float *c, int64_t ldc) {
  for (int64_t r = 0; r < m; r += 4) {
    const float *aRows = a + r * aRow;
    float *cRows = c + r * ldc;
    int64_t j = 0;
    if (width == 16) {
      for (; j + 64 <= n; j += 64)
        tile<16, 4, 4, Accumulate>(aRows, aRow, aCol, b + j, ldb, depth,
                                   cRows + j, ldc);
      for (; j < n; j += 16)
        tile<16, 4, 1, Accumulate>(aRows, aRow, aCol, b + j, ldb, depth,
                                   cRows + j, ldc);
    } else if (width == 8) {
      for (; j < n; j += 16)
        tile<8, 4, 2, Accumulate>(aRows, aRow, aCol, b + j, ldb, depth,
                                  cRows + j, ldc);
    } else {
      for (; j < n; j += 8)
        tile<4, 4, 2, Accumulate>(aRows, aRow, aCol, b + j, ldb, depth,
                                  cRows + j, ldc);
    }
  }
}

/// rows [count, width] (row stride `stride`) into packed [countPadded,
/// widthPadded], zeros elsewhere.
MOERT_ISA_INLINE void packRows(const float *rows, int64_t stride, int64_t count,
                               int64_t width, float *packed,
                               int64_t countPadded, int64_t widthPadded) {
  for (int64_t i = 0; i < countPadded; ++i) {
    float *to = packed + i * widthPadded;
    int64_t copied = i < count ? width : 0;
    std::copy(rows + i * stride, rows + i * stride + copied, to);
    std::fill(to + copied, to + widthPadded, 0.0f);
  }
}

/// The first `count` rows, `width` columns of packed [*, ldPacked] out to
/// rows `stride` apart.
MOERT_ISA_INLINE void unpackRows(const float *packed, int64_t ldPacked,
                                 int64_t count, int64_t width, float *rows,
                                 int64_t stride) {
  for (int64_t i = 0; i < count; ++i)
    std::copy(packed + i * ldPacked, packed + i * ldPacked + width,
              rows + i * stride);
}

/// rows [count, width] (row stride `stride`) transposed into [width,
/// countPadded] times `scale`, zeros beyond count. By kLanes rows at a time,
/// so that neither side is walked with a large stride for long.
MOERT_ISA_INLINE void packColumns(const float *rows, int64_t stride,
                                  int64_t count, int64_t width, float scale,
                                  float *packed, int64_t countPadded) {
  for (int64_t first = 0; first < countPadded; first += kLanes) {
    int64_t block = std::clamp<int64_t>(count - first, 0, kLanes);
    for (int64_t t = 0; t < width; ++t) {
      float *to = packed + t * countPadded + first;
      for (int64_t i = 0; i < block; ++i)
        to[i] = rows[(first + i) * stride + t] * scale;
      std::fill(to + block, to + kLanes, 0.0f);
    }
  }
}

/// max(row[0:n)), -inf if n = 0.
MOERT_ISA_INLINE float rowMax(const float *row, int64_t n) {
  float best = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : best)
  for (int64_t j = 0; j < n; ++j)
    best = row[j] > best ? row[j] : best;
  return best;
}

/// Scores [rows, ld] of query rows first, first + 1, ... to probabilities
/// in place (fp32, max subtracted): row i sees keys j < seq (j <= i if
/// causal) and gets exact zeros from there up to `width`; rows at or past
/// `seq` (block padding) become all zeros.
MOERT_ISA_INLINE void softmaxRows(float *scores, int64_t ld, int64_t rows,
                                  int64_t first, int64_t seq, bool causal,
                                  int64_t width) {
  for (int64_t r = 0; r < rows; ++r) {
    float *row = scores + r * ld;
    int64_t i = first + r;
    int64_t visible = i >= seq ? 0 : causal ? i + 1 : seq;
    float best = rowMax(row, visible), total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < visible; ++j) {
      row[j] = vectorExp(row[j] - best);
      total += row[j];
    }
    float inverse = visible ? 1.0f / total : 0.0f;
#pragma omp simd
    for (int64_t j = 0; j < visible; ++j)
      row[j] *= inverse;
    std::fill(row + visible, row + width, 0.0f);
  }
}

/// dP [rows, ld] (dO v^T) to dS = P * (dP - rowsum(P * dP)) * scale in
/// place, over the first `width` columns. Padding rows and masked keys have
/// P = 0, hence dS = 0.
MOERT_ISA_INLINE void scoreGradRows(const float *probs, float *dScores,
                                    int64_t ld, int64_t rows, int64_t width,
                                    float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *p = probs + r * ld;
    float *d = dScores + r * ld;
    float projection = 0;
#pragma omp simd reduction(+ : projection)
    for (int64_t j = 0; j < width; ++j)
      projection += p[j] * d[j];
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      d[j] = p[j] * (d[j] - projection) * scale;
  }
}

/// One head's problem: sizes, row strides of q and of k/v, and the sizes
/// rounded up to whole vectors.
struct HeadShape {
  int64_t seq, headDim, qStride, kvStride;
  bool causal;
  float scale;
  int64_t keys, dim; ///< seq and headDim rounded up to whole vectors
  int width;         ///< vectorWidth()

  static HeadShape of(int64_t seq, int64_t heads, int64_t kvHeads,
                      int64_t headDim, bool causal, float scale) {
    return {
        seq,          headDim, heads * headDim,      kvHeads * headDim,
        causal,       scale,   roundUp(seq, kLanes), roundUp(headDim, kLanes),
        vectorWidth()};
  }
};

/// AttentionBf16.cpp: whether its kernels run here (AVX512-BF16, an even
/// head size), and one query head forward and backward on bf16 products,
/// with the arguments of Attention.cpp's and AttentionGrad.cpp's, over fp32
/// values or activations stored as bf16.
bool attentionBf16IsNative(int64_t headDim);
void attentionBf16Head(const HeadShape &s, const float *q, const float *k,
                       const float *v, float *out);
void attentionBf16Head(const HeadShape &s, const uint16_t *q,
                       const uint16_t *k, const uint16_t *v, uint16_t *out);
void attentionGradBf16Head(const HeadShape &s, const float *q, const float *k,
                           const float *v, const float *dOut, float *dq,
                           float *dk, float *dv, int64_t dkvStride);
void attentionGradBf16Head(const HeadShape &s, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v,
                           const float *dOut, float *dq, float *dk, float *dv,
                           int64_t dkvStride);

/// This thread's attention buffer of at least n floats (Scratch.h).
struct AttentionScratch;
inline float *scratch(size_t n) {
  return threadScratch<float, AttentionScratch>(n);
}

} // namespace moert::cpu::attention_blocks

#endif // MOERT_CPU_ATTENTIONBLOCKS_H
