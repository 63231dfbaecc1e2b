//===- StreamingDot.h - dot products that stream weight rows ----*- C++ -*-===//
//
// Internal to the kernels of a few rows (ExpertStreaming.cpp,
// StreamingLinear.cpp): with 1 to 4 input rows, a product's time is its
// weight bytes over the memory bandwidth, so each weight row is read once,
// two rows at a time, and dotted with every input row. Each dot sums in
// kLanes partial sums added in a fixed order, so results do not depend on
// the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_STREAMINGDOT_H
#define MOERT_CPU_STREAMINGDOT_H

#include "runtime/base/Float16.h"
#include "runtime/cpu/IsaClones.h"

#include <cstdint>
#include <cstring>
#include <immintrin.h>

namespace moert::cpu::streaming {

/// The most input rows the streaming kernels take.
constexpr int64_t kMaxRows = 4;
constexpr int kLanes = 16; // one AVX-512 vector of fp32 partial sums

MOERT_ISA_INLINE float widen(float v) { return v; }
MOERT_ISA_INLINE float widen(uint16_t v) { return bf16ToFloat(v); }

// kLanes fp32 partial sums in one vector (GCC's vector extension, which
// each clone compiles to its own vector width).
using Lanes = float __attribute__((vector_size(kLanes * sizeof(float))));
using Bf16Lanes =
    uint16_t __attribute__((vector_size(kLanes * sizeof(uint16_t))));
using BitLanes = uint32_t __attribute__((vector_size(kLanes * sizeof(float))));

// Loads into an out-parameter: a vector returned by value would tie the
// baseline clone's ABI to AVX-512.
MOERT_ISA_INLINE void loadLanes(const float *p, Lanes &v) {
  std::memcpy(&v, p, sizeof v);
}
MOERT_ISA_INLINE void loadLanes(const uint16_t *p, Lanes &v) {
  Bf16Lanes halves;
  std::memcpy(&halves, p, sizeof halves);
  v = Lanes(__builtin_convertvector(halves, BitLanes) << 16);
}

/// The sum of v's lanes, halving the vector in a fixed order.
MOERT_ISA_INLINE float sumLanes(const Lanes &v) {
  using Half = float __attribute__((vector_size(8 * sizeof(float))));
  using Quarter = float __attribute__((vector_size(4 * sizeof(float))));
  Half half = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  Quarter quarter = __builtin_shufflevector(half, half, 0, 1, 2, 3) +
                    __builtin_shufflevector(half, half, 4, 5, 6, 7);
  return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

/// dots0[r * dotStride] = x_r . w0 and dots1[r * dotStride] = x_r . w1 over
/// n elements, for Rows rows of x (row r at x + r * stride): two weight rows
/// at once, each read once for all rows, so that two streams of loads are in
/// flight. Each dot sums in kLanes partial sums and the tail, added in a
/// fixed order at the end.
template <int Rows, typename X, typename W>
MOERT_ISA_INLINE void dotRows(const X *x, int64_t stride, const W *w0,
                              const W *w1, int64_t n, float *dots0,
                              float *dots1, int64_t dotStride) {
  // Prefetch 16 KB ahead: on 2 cores, 1 KB (one short row) left the lm_head
  // at 60% of the read bandwidth, 4 KB slowed rows of 2048; 16 KB was best
  // for rows of 512 to 2048.
  constexpr int64_t kAhead = 16384 / sizeof(W);
  Lanes acc0[Rows] = {}, acc1[Rows] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    __builtin_prefetch(w0 + c + kAhead);
    __builtin_prefetch(w1 + c + kAhead);
    Lanes weights0, weights1, row;
    loadLanes(w0 + c, weights0);
    loadLanes(w1 + c, weights1);
    for (int r = 0; r < Rows; ++r) {
      loadLanes(x + r * stride + c, row);
      acc0[r] += row * weights0;
      acc1[r] += row * weights1;
    }
  }
  for (int r = 0; r < Rows; ++r) {
    float sum0 = sumLanes(acc0[r]), sum1 = sumLanes(acc1[r]);
    for (int64_t i = c; i < n; ++i) {
      float v = widen(x[r * stride + i]);
      sum0 += v * widen(w0[i]);
      sum1 += v * widen(w1[i]);
    }
    dots0[r * dotStride] = sum0;
    dots1[r * dotStride] = sum1;
  }
}

// Not always_inline: the templates between a kernel's entry and its dot
// have no target, and GCC refuses to force an AVX512-BF16 function into
// them. The entry, which has the target, is `flatten`ed instead, which
// inlines the dot there.
#define MOERT_DP_BF16_INLINE [[MOERT_AVX512_BF16]] inline

/// dotRows<Rows> for bf16 inputs and weights where AVX512-BF16 runs: each
/// vdpbf16ps takes 32 products (exact in fp32) and adds them in pairs into
/// 16 fp32 partial sums, half the instructions of widening each weight.
template <int Rows>
MOERT_DP_BF16_INLINE void dotRowsDp(const uint16_t *x, int64_t stride,
                                    const uint16_t *w0, const uint16_t *w1,
                                    int64_t n, float *dots0, float *dots1,
                                    int64_t dotStride) {
  constexpr int64_t kAhead = 16384 / sizeof(uint16_t); // as dotRows
  __m512 acc0[Rows], acc1[Rows];
  for (int r = 0; r < Rows; ++r)
    acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __builtin_prefetch(w0 + c + kAhead);
    __builtin_prefetch(w1 + c + kAhead);
    __m512bh weights0 = __m512bh(_mm512_loadu_si512(w0 + c));
    __m512bh weights1 = __m512bh(_mm512_loadu_si512(w1 + c));
    for (int r = 0; r < Rows; ++r) {
      __m512bh row = __m512bh(_mm512_loadu_si512(x + r * stride + c));
      acc0[r] = _mm512_dpbf16_ps(acc0[r], row, weights0);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], row, weights1);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    Lanes lanes0, lanes1; // summed in dotRows' order
    std::memcpy(&lanes0, &acc0[r], sizeof lanes0);
    std::memcpy(&lanes1, &acc1[r], sizeof lanes1);
    float sum0 = sumLanes(lanes0), sum1 = sumLanes(lanes1);
    for (int64_t i = c; i < n; ++i) {
      float v = bf16ToFloat(x[r * stride + i]);
      sum0 += v * bf16ToFloat(w0[i]);
      sum1 += v * bf16ToFloat(w1[i]);
    }
    dots0[r * dotStride] = sum0;
    dots1[r * dotStride] = sum1;
  }
}

/// Rows rows of x (at most 4) dotted with two weight rows: dotRowsDp where
/// the kernel was instantiated with `Dp` (bf16 x bf16 where AVX512-BF16
/// runs), else dotRows.
template <bool Dp, int Rows, typename X, typename W>
[[gnu::always_inline]] inline void dotGroup(const X *x, int64_t stride,
                                            const W *w0, const W *w1,
                                            int64_t n, float *dots0,
                                            float *dots1, int64_t dotStride) {
  if constexpr (Dp)
    dotRowsDp<Rows>(x, stride, w0, w1, n, dots0, dots1, dotStride);
  else
    dotRows<Rows>(x, stride, w0, w1, n, dots0, dots1, dotStride);
}

/// dotGroup for any number of rows, four at a time.
template <bool Dp, typename X, typename W>
[[gnu::always_inline]] inline void dot(int64_t rows, const X *x, int64_t stride,
                                       const W *w0, const W *w1, int64_t n,
                                       float *dots0, float *dots1,
                                       int64_t dotStride) {
  for (; rows >= 4; rows -= 4, x += 4 * stride, dots0 += 4 * dotStride,
                    dots1 += 4 * dotStride)
    dotGroup<Dp, 4>(x, stride, w0, w1, n, dots0, dots1, dotStride);
  switch (rows) {
  case 1:
    return dotGroup<Dp, 1>(x, stride, w0, w1, n, dots0, dots1, dotStride);
  case 2:
    return dotGroup<Dp, 2>(x, stride, w0, w1, n, dots0, dots1, dotStride);
  case 3:
    return dotGroup<Dp, 3>(x, stride, w0, w1, n, dots0, dots1, dotStride);
  }
}

} // namespace moert::cpu::streaming

#endif // MOERT_CPU_STREAMINGDOT_H
