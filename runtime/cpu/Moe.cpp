//===- Moe.cpp - dropless routing, grouped experts, combine ---------------===//
//
// Dispatch is a stable counting sort, so the grouped layout (and with it
// every expert GEMM and the combine order) depends only on the routing, never
// on thread timing.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Kernels.h"

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
        probs[e] = std::exp(row[e] - best);
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
  std::fill(counts, counts + experts, 0);
  for (int64_t s = 0; s < slots; ++s) {
    if (indices[s] < 0 || indices[s] >= experts)
      return absl::InvalidArgumentError(
          absl::StrCat("expert index ", indices[s], " of slot ", s,
                       " is outside [0, ", experts, ")"));
    ++counts[indices[s]];
  }
  std::vector<int64_t> next(experts, 0);
  for (int64_t e = 1; e < experts; ++e)
    next[e] = next[e - 1] + counts[e - 1];
  for (int64_t s = 0; s < slots; ++s)
    sourceSlots[next[indices[s]]++] = int32_t(s);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < slots; ++r)
    std::memcpy(grouped + r * d, x + (sourceSlots[r] / k) * d,
                d * sizeof(float));
  return absl::OkStatus();
}

namespace {
/// Grow-only, uninitialised scratch memory kept per thread across calls: a
/// fresh zero-filled vector for every MoE layer costs a memset and a page
/// fault per page, which measured about a fifth of the layer's time.
template <typename T, int Slot> T *scratch(size_t count) {
  thread_local std::unique_ptr<T[]> buffer;
  thread_local size_t size = 0;
  if (size < count) {
    buffer.reset(new T[count]);
    size = count;
  }
  return buffer.get();
}

/// The bf16 path: rows are rounded to bf16 once for both the gate and up
/// GEMMs, and the SwiGLU writes the down GEMM's bf16 input directly.
absl::Status expertMlpBf16(const float *grouped, const int64_t *counts,
                           int64_t experts, int64_t d, int64_t f, Weight w1,
                           Weight w3, Weight w2, float *out, float *gate,
                           float *up, int64_t most) {
  int64_t rows = std::accumulate(counts, counts + experts, int64_t(0));
  uint16_t *x = scratch<uint16_t, 0>(rows * d);
  uint16_t *hidden = scratch<uint16_t, 1>(most * f);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows * d; ++i)
    x[i] = floatToBf16(grouped[i]);
  auto slice = [&](Weight w, int64_t e) {
    return Weight{static_cast<const uint16_t *>(w.data) + e * f * d, w.dtype};
  };
  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e) {
    int64_t n = counts[e];
    if (n == 0)
      continue;
    const uint16_t *rowsIn = x + row * d;
    if (auto s = linearBf16(rowsIn, n, d, slice(w1, e), f, gate); !s.ok())
      return s;
    if (auto s = linearBf16(rowsIn, n, d, slice(w3, e), f, up); !s.ok())
      return s;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n * f; ++i)
      hidden[i] = floatToBf16(gate[i] / (1.0f + std::exp(-gate[i])) * up[i]);
    if (auto s = linearBf16(hidden, n, f, slice(w2, e), d, out + row * d);
        !s.ok())
      return s;
    row += n;
  }
  return absl::OkStatus();
}
} // namespace

absl::Status expertMlp(const float *grouped, const int64_t *counts,
                       int64_t experts, int64_t d, int64_t f, Weight w1,
                       Weight w3, Weight w2, float *out) {
  size_t elementBytes = dtypeSize(w1.dtype);
  auto slice = [&](Weight w, int64_t e) {
    return Weight{static_cast<const uint8_t *>(w.data) + e * f * d * elementBytes,
                  w.dtype};
  };
  int64_t most = 0;
  for (int64_t e = 0; e < experts; ++e)
    most = std::max(most, counts[e]);
  float *gate = scratch<float, 0>(most * f);
  float *up = scratch<float, 1>(most * f);
  if (w1.dtype == DType::kBF16 && bf16MatmulIsNative())
    return expertMlpBf16(grouped, counts, experts, d, f, w1, w3, w2, out, gate,
                         up, most);
  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e) {
    int64_t rows = counts[e];
    if (rows == 0)
      continue;
    const float *x = grouped + row * d;
    if (auto s = linear(x, rows, d, slice(w1, e), f, gate); !s.ok())
      return s;
    if (auto s = linear(x, rows, d, slice(w3, e), f, up); !s.ok())
      return s;
    swiglu(gate, up, rows * f, gate);
    if (auto s = linear(gate, rows, f, slice(w2, e), d, out + row * d);
        !s.ok())
      return s;
    row += rows;
  }
  return absl::OkStatus();
}

absl::Status combine(const float *y, const float *weights,
                     const int32_t *sourceSlots, int64_t tokens, int64_t k,
                     int64_t d, float *out) {
  int64_t slots = tokens * k;
  std::vector<int64_t> rowOfSlot(slots, -1);
  for (int64_t r = 0; r < slots; ++r) {
    int32_t slot = sourceSlots[r];
    if (slot < 0 || slot >= slots || rowOfSlot[slot] != -1)
      return absl::InvalidArgumentError(absl::StrCat(
          "source slots are not a permutation of [0, ", slots, ")"));
    rowOfSlot[slot] = r;
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    float *row = out + t * d;
    std::fill(row, row + d, 0.0f);
    for (int64_t j = 0; j < k; ++j) {
      float w = weights[t * k + j];
      const float *source = y + rowOfSlot[t * k + j] * d;
      for (int64_t i = 0; i < d; ++i)
        row[i] += w * source[i];
    }
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
