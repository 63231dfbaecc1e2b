//===- ExpertMlpGrad.cpp - backward of the grouped SwiGLU experts ---------===//
//
// Per expert, the hidden activations h1 = x w1^T and h3 = x w3^T are
// recomputed (as expertMlp computes them, bf16 GEMMs included) rather than
// kept from the forward pass. Input gradients use the forward's GEMM dtype;
// weight gradients are fp32 GEMMs over fp32 activations.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/WeightElement.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

namespace moert::cpu {
namespace {
/// Grow-only, uninitialised scratch kept per thread across calls (see
/// expertMlp: fresh zeroed buffers per layer cost page faults).
template <typename T, int Slot> T *scratch(size_t count) {
  thread_local std::unique_ptr<T[]> buffer;
  thread_local size_t size = 0;
  if (size < count) {
    buffer.reset(new T[count]);
    size = count;
  }
  return buffer.get();
}

void roundToBf16(const float *in, int64_t n, uint16_t *out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = floatToBf16(in[i]);
}

void widen(Weight w, int64_t offset, int64_t n, float *out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = weightElement(w, offset + i);
}
} // namespace

absl::Status expertMlpGrad(const float *grouped, const int64_t *counts,
                           int64_t experts, int64_t d, int64_t f, Weight w1,
                           Weight w3, Weight w2, const float *dy,
                           float *dgrouped, float *dw1, float *dw3,
                           float *dw2) {
  // Three GEMM modes, as in linear(): fp32 weights as stored, native bf16
  // GEMMs on rounded activations, or weights widened to fp32 per expert.
  bool bf16 = w1.dtype == DType::kBF16 && bf16MatmulIsNative();
  bool widened = w1.dtype != DType::kF32 && !bf16;
  size_t elementBytes = dtypeSize(w1.dtype);
  int64_t rows = std::accumulate(counts, counts + experts, int64_t(0));
  int64_t most = 0;
  for (int64_t e = 0; e < experts; ++e)
    most = std::max(most, counts[e]);

  float *h1 = scratch<float, 0>(most * f);
  float *h3 = scratch<float, 1>(most * f);
  float *act = scratch<float, 2>(most * f);
  float *dact = scratch<float, 3>(most * f);
  uint16_t *xBf16 = nullptr, *dyBf16 = nullptr, *dhBf16 = nullptr;
  float *wide = nullptr;
  if (bf16) {
    xBf16 = scratch<uint16_t, 0>(rows * d);
    dyBf16 = scratch<uint16_t, 1>(rows * d);
    dhBf16 = scratch<uint16_t, 2>(2 * most * f);
    roundToBf16(grouped, rows * d, xBf16);
    roundToBf16(dy, rows * d, dyBf16);
  }
  if (widened)
    wide = scratch<float, 4>(3 * f * d);

  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e) {
    int64_t n = counts[e];
    int64_t slice = e * f * d;
    if (n == 0) {
      std::fill(dw1 + slice, dw1 + slice + f * d, 0.0f);
      std::fill(dw3 + slice, dw3 + slice + f * d, 0.0f);
      std::fill(dw2 + slice, dw2 + slice + f * d, 0.0f);
      continue;
    }
    const float *x = grouped + row * d;
    const float *grad = dy + row * d;
    const void *w1e, *w3e, *w2e;
    if (widened) {
      widen(w1, slice, f * d, wide);
      widen(w3, slice, f * d, wide + f * d);
      widen(w2, slice, f * d, wide + 2 * f * d);
      w1e = wide;
      w3e = wide + f * d;
      w2e = wide + 2 * f * d;
    } else {
      w1e = static_cast<const uint8_t *>(w1.data) + slice * elementBytes;
      w3e = static_cast<const uint8_t *>(w3.data) + slice * elementBytes;
      w2e = static_cast<const uint8_t *>(w2.data) + slice * elementBytes;
    }
    const void *xIn = bf16 ? static_cast<const void *>(xBf16 + row * d) : x;
    const void *dyIn =
        bf16 ? static_cast<const void *>(dyBf16 + row * d) : grad;

    // Recompute h1, h3 [n, F]; dact = dy w2 [n, F].
    if (auto s = gradMatmul(xIn, Layout::kAsIs, w1e, Layout::kTransposed, h1,
                            n, d, f, bf16);
        !s.ok())
      return s;
    if (auto s = gradMatmul(xIn, Layout::kAsIs, w3e, Layout::kTransposed, h3,
                            n, d, f, bf16);
        !s.ok())
      return s;
    if (auto s = gradMatmul(dyIn, Layout::kAsIs, w2e, Layout::kAsIs, dact, n,
                            d, f, bf16);
        !s.ok())
      return s;
    // act = silu(h1) h3; then h1, h3 become their gradients.
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n * f; ++i) {
      float gate = h1[i], up = h3[i], g = dact[i];
      float sigmoid = 1.0f / (1.0f + vectorExp(-gate));
      float silu = gate * sigmoid;
      act[i] = silu * up;
      h1[i] = g * up * sigmoid * (1.0f + gate * (1.0f - sigmoid));
      h3[i] = g * silu;
    }
    // dw2 [D, F] = dy^T act; dw1, dw3 [F, D] = dh^T x.
    if (auto s = gradMatmul(grad, Layout::kTransposed, act, Layout::kAsIs,
                            dw2 + slice, d, n, f, false);
        !s.ok())
      return s;
    if (auto s = gradMatmul(h1, Layout::kTransposed, x, Layout::kAsIs,
                            dw1 + slice, f, n, d, false);
        !s.ok())
      return s;
    if (auto s = gradMatmul(h3, Layout::kTransposed, x, Layout::kAsIs,
                            dw3 + slice, f, n, d, false);
        !s.ok())
      return s;
    // dx [n, D] = dh1 w1 + dh3 w3.
    const void *dh1 = h1, *dh3 = h3;
    if (bf16) {
      roundToBf16(h1, n * f, dhBf16);
      roundToBf16(h3, n * f, dhBf16 + n * f);
      dh1 = dhBf16;
      dh3 = dhBf16 + n * f;
    }
    float *dx = dgrouped + row * d;
    if (auto s = gradMatmul(dh1, Layout::kAsIs, w1e, Layout::kAsIs, dx, n, f,
                            d, bf16);
        !s.ok())
      return s;
    if (auto s = gradMatmul(dh3, Layout::kAsIs, w3e, Layout::kAsIs, dx, n, f,
                            d, bf16, /*accumulate=*/true);
        !s.ok())
      return s;
    row += n;
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
