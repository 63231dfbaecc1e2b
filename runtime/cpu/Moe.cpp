//===- Moe.cpp - dropless routing, grouped experts, combine ---------------===//
//
// Dispatch is a stable counting sort, so the grouped layout (and with it
// every expert GEMM and the combine order) depends only on the routing, never
// on thread timing. The experts' GEMMs and SwiGLU are those of the backward
// (GradMatmul.h), so both compute the hidden activations alike.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertRouting.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/RoutingMath.h"
#include "runtime/cpu/Scratch.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

namespace moert::cpu {

void routerTopK(const float *logits, int64_t tokens, int64_t experts,
                int64_t k, bool normalize, float *weights, int32_t *indices) {
#pragma omp parallel
  {
    std::vector<float> probs(experts);
    std::vector<int32_t> order(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      const float *row = logits + t * experts;
      float best = *std::max_element(row, row + experts);
      double total = 0;
      for (int64_t e = 0; e < experts; ++e) {
        // exp in double, rounded once: the GPU's exp then gives the same
        // float (its expf may differ by an ulp and flip a near tie).
        probs[e] = float(std::exp(double(row[e] - best)));
        total += probs[e];
      }
      for (int64_t e = 0; e < experts; ++e)
        probs[e] = float(probs[e] / total);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int32_t a, int32_t b) {
                          return probs[a] > probs[b] ||
                                 (probs[a] == probs[b] && a < b);
                        });
      double chosen = 0;
      for (int64_t j = 0; j < k; ++j)
        chosen += probs[order[j]];
      for (int64_t j = 0; j < k; ++j) {
        indices[t * k + j] = order[j];
        weights[t * k + j] =
            normalize ? float(probs[order[j]] / chosen) : probs[order[j]];
      }
    }
  }
}

absl::Status dispatch(const float *x, const int32_t *indices, int64_t tokens,
                      int64_t k, int64_t experts, int64_t d, float *grouped,
                      int64_t *counts, int32_t *sourceSlots) {
  int64_t slots = tokens * k;
  if (auto status = groupByExpert(indices, slots, experts, counts, sourceSlots);
      !status.ok())
    return status;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < slots; ++r)
    std::memcpy(grouped + r * d, x + (sourceSlots[r] / k) * d,
                d * sizeof(float));
  return absl::OkStatus();
}

namespace {
struct ExpertScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, ExpertScratch, Slot>(count);
}

struct Experts {
  const float *grouped;
  const int64_t *counts;
  int64_t d, f;
  Weight w1, w3, w2;
  float *out;
  bool bf16, widened;
  const uint16_t *xBf16; // all rows, when bf16
  float *gateHidden, *upHidden; // kept for the backward pass, when given
};

/// The MLP of expert e over its rows, which start at `row`. Three GEMM
/// modes, as in linear(): fp32 weights as stored, native bf16 GEMMs (the rows
/// rounded to bf16 once for the gate and up GEMMs, the SwiGLU writing the
/// down GEMM's bf16 input directly), or weights widened to fp32 per expert.
absl::Status expertForward(const Experts &p, int64_t e, int64_t row,
                           Threads threads) {
  int64_t n = p.counts[e], d = p.d, f = p.f;
  if (n == 0)
    return absl::OkStatus();
  bool keep = p.gateHidden != nullptr;
  float *gate = keep ? p.gateHidden + row * f : scratch<float, 0>(n * f);
  float *up = keep ? p.upHidden + row * f : scratch<float, 1>(n * f);
  // The SwiGLU overwrites gate unless gate is kept or bf16 takes the output.
  float *hiddenF32 = keep ? scratch<float, 0>(n * f) : gate;
  uint16_t *hiddenBf16 = p.bf16 ? scratch<uint16_t, 0>(n * f) : nullptr;
  ExpertSlices weights =
      expertSlices(p.w1, p.w3, p.w2, e, f, d, p.widened,
                   p.widened ? scratch<float, 2>(3 * f * d) : nullptr, threads);
  const void *w1e = weights.w1, *w3e = weights.w3, *w2e = weights.w2;
  const void *x = p.bf16 ? static_cast<const void *>(p.xBf16 + row * d)
                         : static_cast<const void *>(p.grouped + row * d);
  if (auto s = gradMatmul(x, Layout::kAsIs, w1e, Layout::kTransposed, gate, n,
                          d, f, p.bf16, false, threads);
      !s.ok())
    return s;
  if (auto s = gradMatmul(x, Layout::kAsIs, w3e, Layout::kTransposed, up, n, d,
                          f, p.bf16, false, threads);
      !s.ok())
    return s;
  forBlocks(n * f, threads, [&](int64_t begin, int64_t end) {
    swigluForward(gate + begin, up + begin, end - begin,
                  hiddenBf16 ? nullptr : hiddenF32 + begin,
                  hiddenBf16 ? hiddenBf16 + begin : nullptr);
  });
  const void *hidden =
      p.bf16 ? static_cast<const void *>(hiddenBf16) : hiddenF32;
  return gradMatmul(hidden, Layout::kAsIs, w2e, Layout::kTransposed,
                    p.out + row * d, n, f, d, p.bf16, false, threads);
}
} // namespace

// Experts run one after the other on all threads, or, when they share out
// evenly among the threads, side by side with one-thread GEMMs (as in
// expertMlpGrad); every expert writes only its own rows, and a GEMM gives
// the same result on any number of threads.
absl::Status expertMlp(const float *grouped, const int64_t *counts,
                       int64_t experts, int64_t d, int64_t f, Weight w1,
                       Weight w3, Weight w2, float *out, float *gateHidden,
                       float *upHidden) {
  bool bf16 = w1.dtype == DType::kBF16 && bf16MatmulIsNative();
  bool widened = w1.dtype != DType::kF32 && !bf16;
  Experts p{grouped, counts, d,       f,       w1,        w3,      w2,
            out,     bf16,   widened, nullptr, gateHidden, upHidden};
  if (bf16) {
    int64_t rows = std::accumulate(counts, counts + experts, int64_t(0));
    uint16_t *x = scratch<uint16_t, 1>(rows * d);
    roundToBf16(grouped, rows * d, x);
    p.xBf16 = x;
  }
  return forEachExpert(counts, experts,
                       [&](int64_t e, int64_t firstRow, Threads threads) {
                         return expertForward(p, e, firstRow, threads);
                       });
}

absl::Status combine(const float *y, const float *weights,
                     const int32_t *sourceSlots, int64_t tokens, int64_t k,
                     int64_t d, float *out) {
  std::vector<int64_t> rowOfSlot;
  if (auto status = invertSlots(sourceSlots, tokens * k, rowOfSlot);
      !status.ok())
    return status;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    float *row = out + t * d;
    std::fill(row, row + d, 0.0f);
    for (int64_t j = 0; j < k; ++j) {
      float w = weights ? weights[t * k + j] : 1.0f;
      const float *source = y + rowOfSlot[t * k + j] * d;
      for (int64_t i = 0; i < d; ++i)
        row[i] += w * source[i];
    }
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
