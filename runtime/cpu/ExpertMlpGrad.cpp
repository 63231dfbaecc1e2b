//===- ExpertMlpGrad.cpp - backward of the grouped SwiGLU experts ---------===//
//
// Per expert, the hidden activations h1 = x w1^T and h3 = x w3^T are read
// as the forward pass kept them or recomputed (as expertMlp computes them,
// bf16 GEMMs included). Every GEMM uses the forward's dtype: with bf16
// weights, the weight gradients are bf16 GEMMs of rounded activations with
// fp32 accumulation and output, as mixed-precision training computes them.
//
// When the experts share out evenly among the threads, each thread runs
// whole experts with single-threaded GEMMs (no barriers, and a one-thread
// GEMM is the most efficient); otherwise experts run one after the other on
// all threads. Every expert writes only its own rows and weight slices, and
// a GEMM gives the same result on any number of threads, so both give the
// same result.
//
// The SwiGLU loops are compiled for AVX-512, for AVX-512 with BF16 (bf16
// outputs rounded by the conversion instruction) and for the baseline ISA,
// and picked at run time (the build targets the baseline).
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/cpu/WeightElement.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <numeric>

namespace moert::cpu {
namespace {
//===----------------------------------------------------------------------===//
// SwiGLU loops
//===----------------------------------------------------------------------===//

[[gnu::always_inline]] inline void
swigluForwardBody(const float *gate, const float *up, int64_t n,
                  float *hidden, uint16_t *hiddenBf16) {
  if (hiddenBf16) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float g = gate[i];
      hiddenBf16[i] = floatToBf16(g / (1.0f + vectorExp(-g)) * up[i]);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float g = gate[i];
      hidden[i] = g / (1.0f + vectorExp(-g)) * up[i];
    }
  }
}

[[gnu::always_inline]] inline void swigluBackwardBody(const SwigluGrad &b,
                                                      int64_t begin,
                                                      int64_t end) {
  const float *gate = b.gate, *up = b.up, *dhidden = b.dhidden;
  if (b.act) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      float g = gate[i], u = up[i], dh = dhidden[i];
      float sigmoid = 1.0f / (1.0f + vectorExp(-g));
      float silu = g * sigmoid;
      b.act[i] = silu * u;
      b.dgate[i] = dh * u * sigmoid * (1.0f + g * (1.0f - sigmoid));
      b.dup[i] = dh * silu;
    }
  } else {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      float g = gate[i], u = up[i], dh = dhidden[i];
      float sigmoid = 1.0f / (1.0f + vectorExp(-g));
      float silu = g * sigmoid;
      b.actBf16[i] = floatToBf16(silu * u);
      b.dgateBf16[i] = floatToBf16(dh * u * sigmoid * (1.0f + g * (1.0f - sigmoid)));
      b.dupBf16[i] = floatToBf16(dh * silu);
    }
  }
}

[[MOERT_AVX512]] void swigluForwardAvx512(const float *gate, const float *up,
                                          int64_t n, float *hidden,
                                          uint16_t *hiddenBf16) {
  swigluForwardBody(gate, up, n, hidden, hiddenBf16);
}

[[MOERT_AVX512]] void swigluBackwardAvx512(const SwigluGrad &b, int64_t begin,
                                           int64_t end) {
  swigluBackwardBody(b, begin, end);
}

// With AVX512-BF16, the bf16 outputs are computed in fp32 a chunk at a time
// into a buffer on the stack (the loops above) and rounded by vcvtne2ps2bf16,
// which rounds to nearest even as floatToBf16 does (subnormal values become
// zero): twice as fast as rounding in the loops.

constexpr int64_t kChunk = 64;

[[MOERT_AVX512_BF16, gnu::always_inline]] inline void
roundChunk(const float *in, uint16_t *out) {
  for (int64_t j = 0; j < kChunk; j += 32)
    _mm512_storeu_si512(out + j, __m512i(_mm512_cvtne2ps_pbh(
                                     _mm512_loadu_ps(in + j + 16),
                                     _mm512_loadu_ps(in + j))));
}

[[MOERT_AVX512_BF16]] void swigluForwardNativeBf16(const float *gate,
                                                   const float *up, int64_t n,
                                                   uint16_t *hiddenBf16) {
  alignas(64) float hidden[kChunk];
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    swigluForwardBody(gate + i, up + i, kChunk, hidden, nullptr);
    roundChunk(hidden, hiddenBf16 + i);
  }
  swigluForwardBody(gate + i, up + i, n - i, nullptr, hiddenBf16 + i);
}

[[MOERT_AVX512_BF16]] void swigluBackwardNativeBf16(const SwigluGrad &b,
                                                    int64_t begin,
                                                    int64_t end) {
  alignas(64) float act[kChunk], dgate[kChunk], dup[kChunk];
  int64_t i = begin;
  for (; i + kChunk <= end; i += kChunk) {
    SwigluGrad chunk{b.gate + i, b.up + i, b.dhidden + i, act, dgate,
                     dup,        nullptr,  nullptr,       nullptr};
    swigluBackwardBody(chunk, 0, kChunk);
    roundChunk(act, b.actBf16 + i);
    roundChunk(dgate, b.dgateBf16 + i);
    roundChunk(dup, b.dupBf16 + i);
  }
  swigluBackwardBody(b, i, end);
}

void swigluForwardBaseline(const float *gate, const float *up, int64_t n,
                           float *hidden, uint16_t *hiddenBf16) {
  swigluForwardBody(gate, up, n, hidden, hiddenBf16);
}

void swigluBackwardBaseline(const SwigluGrad &b, int64_t begin, int64_t end) {
  swigluBackwardBody(b, begin, end);
}

//===----------------------------------------------------------------------===//
// Scratch
//===----------------------------------------------------------------------===//

struct ExpertGradScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, ExpertGradScratch, Slot>(count);
}

struct Problem {
  const float *grouped;
  const int64_t *counts;
  int64_t d, f;
  Weight w1, w3, w2;
  const float *dy;
  float *dgrouped, *dw1, *dw3, *dw2;
  bool bf16, widened;
  const uint16_t *xBf16, *dyBf16; // all rows, when bf16
  const float *gateHidden, *upHidden; // kept by the forward pass, or null
};

/// The experts by decreasing row count (ties by index): the order in which
/// the threads take them when side by side, which balances them well.
std::vector<int64_t> largestFirst(const int64_t *counts, int64_t experts) {
  std::vector<int64_t> order(experts);
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return counts[a] > counts[b];
  });
  return order;
}

/// The backward of expert e, whose rows start at `row`.
absl::Status expertGrad(const Problem &p, int64_t e, int64_t row,
                        Threads threads) {
  int64_t n = p.counts[e], d = p.d, f = p.f;
  int64_t slice = e * f * d;
  if (n == 0) {
    std::fill(p.dw1 + slice, p.dw1 + slice + f * d, 0.0f);
    std::fill(p.dw3 + slice, p.dw3 + slice + f * d, 0.0f);
    std::fill(p.dw2 + slice, p.dw2 + slice + f * d, 0.0f);
    return absl::OkStatus();
  }
  // fp32 mode: act, dact and the gradients dh1, dh3 in fp32; bf16 mode:
  // the gradients and act only in bf16.
  float *dact = scratch<float, 3>(n * f);
  float *act = p.bf16 ? nullptr : scratch<float, 2>(n * f);
  float *dh = p.bf16 ? nullptr : scratch<float, 5>(2 * n * f);
  uint16_t *bf16Out = p.bf16 ? scratch<uint16_t, 0>(3 * n * f) : nullptr;

  const float *x = p.grouped + row * d;
  const float *grad = p.dy + row * d;
  ExpertSlices weights =
      expertSlices(p.w1, p.w3, p.w2, e, f, d, p.widened,
                   p.widened ? scratch<float, 4>(3 * f * d) : nullptr, threads);
  const void *w1e = weights.w1, *w3e = weights.w3, *w2e = weights.w2;
  const void *xIn = p.bf16 ? static_cast<const void *>(p.xBf16 + row * d) : x;
  const void *dyIn =
      p.bf16 ? static_cast<const void *>(p.dyBf16 + row * d) : grad;
  bool bf16 = p.bf16;

  // h1, h3 [n, F]: as the forward pass kept them, or recomputed.
  const float *gateHidden, *upHidden;
  if (p.gateHidden) {
    gateHidden = p.gateHidden + row * f;
    upHidden = p.upHidden + row * f;
  } else {
    float *h1 = scratch<float, 0>(n * f), *h3 = scratch<float, 1>(n * f);
    gateHidden = h1;
    upHidden = h3;
    if (auto s = gradMatmul(xIn, Layout::kAsIs, w1e, Layout::kTransposed, h1,
                            n, d, f, bf16, false, threads);
        !s.ok())
      return s;
    if (auto s = gradMatmul(xIn, Layout::kAsIs, w3e, Layout::kTransposed, h3,
                            n, d, f, bf16, false, threads);
        !s.ok())
      return s;
  }
  // dact = dy w2 [n, F].
  if (auto s = gradMatmul(dyIn, Layout::kAsIs, w2e, Layout::kAsIs, dact, n, d,
                          f, bf16, false, threads);
      !s.ok())
    return s;
  SwigluGrad swiglu{gateHidden, upHidden, dact, act,
                    dh,         dh ? dh + n * f : nullptr,
                    bf16Out,    bf16Out ? bf16Out + n * f : nullptr,
                    bf16Out ? bf16Out + 2 * n * f : nullptr};
  forBlocks(n * f, threads, [&](int64_t begin, int64_t end) {
    swigluBackward(swiglu, begin, end);
  });
  // dw2 [D, F] = dy^T act; dw1, dw3 [F, D] = dh^T x; with bf16 weights on
  // the bf16 roundings of the activations (fp32 accumulation), as mixed
  // precision training computes them.
  const void *actIn = act, *dh1 = dh, *dh3 = dh ? dh + n * f : nullptr;
  const void *xRows = x;
  if (bf16) {
    actIn = bf16Out;
    dh1 = bf16Out + n * f;
    dh3 = bf16Out + 2 * n * f;
    xRows = p.xBf16 + row * d;
  }
  if (auto s = gradMatmul(dyIn, Layout::kTransposed, actIn, Layout::kAsIs,
                          p.dw2 + slice, d, n, f, bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(dh1, Layout::kTransposed, xRows, Layout::kAsIs,
                          p.dw1 + slice, f, n, d, bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(dh3, Layout::kTransposed, xRows, Layout::kAsIs,
                          p.dw3 + slice, f, n, d, bf16, false, threads);
      !s.ok())
    return s;
  // dx [n, D] = dh1 w1 + dh3 w3.
  float *dx = p.dgrouped + row * d;
  if (auto s = gradMatmul(dh1, Layout::kAsIs, w1e, Layout::kAsIs, dx, n, f, d,
                          bf16, false, threads);
      !s.ok())
    return s;
  return gradMatmul(dh3, Layout::kAsIs, w3e, Layout::kAsIs, dx, n, f, d, bf16,
                    /*accumulate=*/true, threads);
}
} // namespace

void swigluForward(const float *gate, const float *up, int64_t n,
                   float *hidden, uint16_t *hiddenBf16) {
  if (hiddenBf16 && cpuHasAvx512Bf16())
    swigluForwardNativeBf16(gate, up, n, hiddenBf16);
  else if (cpuHasAvx512())
    swigluForwardAvx512(gate, up, n, hidden, hiddenBf16);
  else
    swigluForwardBaseline(gate, up, n, hidden, hiddenBf16);
}

void swigluBackward(const SwigluGrad &buffers, int64_t begin, int64_t end) {
  if (!buffers.act && cpuHasAvx512Bf16())
    swigluBackwardNativeBf16(buffers, begin, end);
  else if (cpuHasAvx512())
    swigluBackwardAvx512(buffers, begin, end);
  else
    swigluBackwardBaseline(buffers, begin, end);
}

bool expertsSideBySide(const int64_t *counts, int64_t experts) {
  int64_t threads = omp_get_max_threads();
  if (threads < 2 || omp_in_parallel())
    return false;
  // Greedy largest-first shares (as the threads take them); each expert
  // also costs a little beyond its rows.
  constexpr int64_t kFixedRows = 8;
  std::vector<int64_t> load(threads, 0);
  int64_t total = 0;
  for (int64_t e : largestFirst(counts, experts)) {
    if (counts[e] == 0)
      break;
    *std::min_element(load.begin(), load.end()) += counts[e] + kFixedRows;
    total += counts[e] + kFixedRows;
  }
  int64_t longest = *std::max_element(load.begin(), load.end());
  // One-thread GEMMs run about an eighth faster per thread than shared ones,
  // which pays for that much imbalance.
  return total > 0 && longest * threads * 8 <= total * 9;
}

ExpertSlices expertSlices(const Weight &w1, const Weight &w3, const Weight &w2,
                          int64_t e, int64_t f, int64_t d, bool widen,
                          float *wide, Threads threads) {
  int64_t slice = e * f * d;
  if (widen) {
    forBlocks(3 * f * d, threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Weight &w = i < f * d ? w1 : i < 2 * f * d ? w3 : w2;
        wide[i] = weightElement(w, slice + i % (f * d));
      }
    });
    return {wide, wide + f * d, wide + 2 * f * d};
  }
  size_t bytes = dtypeSize(w1.dtype);
  auto at = [&](const Weight &w) {
    return static_cast<const void *>(static_cast<const uint8_t *>(w.data) +
                                     slice * bytes);
  };
  return {at(w1), at(w3), at(w2)};
}

absl::Status forEachExpert(
    const int64_t *counts, int64_t experts,
    const std::function<absl::Status(int64_t e, int64_t firstRow,
                                     Threads threads)> &body) {
  std::vector<int64_t> first(experts, 0);
  for (int64_t e = 1; e < experts; ++e)
    first[e] = first[e - 1] + counts[e - 1];
  if (!expertsSideBySide(counts, experts)) {
    for (int64_t e = 0; e < experts; ++e)
      if (absl::Status s = body(e, first[e], Threads::kAll); !s.ok())
        return s;
    return absl::OkStatus();
  }
  std::vector<int64_t> order = largestFirst(counts, experts);
  std::vector<absl::Status> status(experts);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < experts; ++i)
    status[order[i]] = body(order[i], first[order[i]], Threads::kCaller);
  for (const absl::Status &s : status)
    if (!s.ok())
      return s;
  return absl::OkStatus();
}

absl::Status expertMlpGrad(const float *grouped, const int64_t *counts,
                           int64_t experts, int64_t d, int64_t f, Weight w1,
                           Weight w3, Weight w2, const float *dy,
                           float *dgrouped, float *dw1, float *dw3,
                           float *dw2, const float *gateHidden,
                           const float *upHidden) {
  // Three GEMM modes, as in linear(): fp32 weights as stored, native bf16
  // GEMMs on rounded activations, or weights widened to fp32 per expert.
  bool bf16 = w1.dtype == DType::kBF16 && bf16MatmulIsNative();
  bool widened = w1.dtype != DType::kF32 && !bf16;
  int64_t rows = std::accumulate(counts, counts + experts, int64_t(0));
  Problem p{grouped, counts, d,        f,      w1,      w3,     w2,
            dy,      dgrouped, dw1,   dw3,    dw2,     bf16,   widened,
            nullptr, nullptr,  gateHidden, upHidden};
  if (bf16) {
    uint16_t *xBf16 = scratch<uint16_t, 3>(rows * d);
    roundToBf16(grouped, rows * d, xBf16);
    p.xBf16 = xBf16;
    uint16_t *dyBf16 = scratch<uint16_t, 2>(rows * d);
    roundToBf16(dy, rows * d, dyBf16);
    p.dyBf16 = dyBf16;
  }
  return forEachExpert(counts, experts,
                       [&](int64_t e, int64_t firstRow, Threads threads) {
                         return expertGrad(p, e, firstRow, threads);
                       });
}

} // namespace moert::cpu
