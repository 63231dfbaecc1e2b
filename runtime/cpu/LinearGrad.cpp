//===- LinearGrad.cpp - backward of y = x w^T -----------------------------===//
//
// dx = dy w reads the [N, K] weight as stored; dw = dy^T x reads dy
// transposed in place. Weight dtypes follow linear(): bf16 GEMMs when they
// are native (the activations rounded to bf16 on the way in, fp32
// accumulation, as mixed-precision training computes both), else the weight
// is widened to fp32 per call.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/Scratch.h"
#include "runtime/cpu/WeightElement.h"

#include <vector>

namespace moert::cpu {
namespace {
struct LinearGradScratch;
/// The bf16 copies of the GEMM operands (at most the size of the largest
/// activation involved, in bf16).
template <int Slot> uint16_t *bf16Scratch(size_t n) {
  return threadScratch<uint16_t, LinearGradScratch, Slot>(n);
}
} // namespace

absl::Status linearGradInput(const float *dy, int64_t m, int64_t n, Weight w,
                             int64_t k, float *dx) {
  if (w.dtype == DType::kF32)
    return gradMatmul(dy, Layout::kAsIs, w.data, Layout::kAsIs, dx, m, n, k,
                      /*bf16=*/false);
  if (w.dtype == DType::kBF16 && bf16MatmulIsNative()) {
    uint16_t *dyBf16 = bf16Scratch<0>(size_t(m * n));
    roundToBf16(dy, m * n, dyBf16);
    return gradMatmul(dyBf16, Layout::kAsIs, w.data, Layout::kAsIs, dx, m, n, k,
                      /*bf16=*/true);
  }
  std::vector<float> wide(size_t(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * k; ++i)
    wide[i] = weightElement(w, i);
  return gradMatmul(dy, Layout::kAsIs, wide.data(), Layout::kAsIs, dx, m, n, k,
                    /*bf16=*/false);
}

absl::Status linearGradWeight(const float *dy, const float *x, int64_t m,
                              int64_t n, int64_t k, float *dw, bool bf16) {
  if (!bf16 || !bf16MatmulIsNative())
    return gradMatmul(dy, Layout::kTransposed, x, Layout::kAsIs, dw, n, m, k,
                      /*bf16=*/false);
  uint16_t *xBf16 = bf16Scratch<1>(size_t(m * k));
  roundToBf16(x, m * k, xBf16);
  return linearGradWeightBf16(dy, xBf16, m, n, k, dw);
}

absl::Status linearGradWeightBf16(const float *dy, const uint16_t *x, int64_t m,
                                  int64_t n, int64_t k, float *dw) {
  uint16_t *dyBf16 = bf16Scratch<0>(size_t(m * n));
  roundToBf16(dy, m * n, dyBf16);
  return gradMatmul(dyBf16, Layout::kTransposed, x, Layout::kAsIs, dw, n, m, k,
                    /*bf16=*/true);
}

} // namespace moert::cpu
