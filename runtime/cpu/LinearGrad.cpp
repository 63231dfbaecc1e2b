//===- LinearGrad.cpp - backward of y = x w^T -----------------------------===//
//
// dx = dy w reads the [N, K] weight as stored; dw = dy^T x reads dy
// transposed in place. Weight dtypes follow linear(): bf16 GEMMs when they
// are native (dy rounded to bf16 on the way in), else the weight is widened
// to fp32 per call.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMatmul.h"
#include "runtime/cpu/WeightElement.h"

#include <vector>

namespace moert::cpu {

absl::Status linearGradInput(const float *dy, int64_t m, int64_t n, Weight w,
                             int64_t k, float *dx) {
  if (w.dtype == DType::kF32)
    return gradMatmul(dy, Layout::kAsIs, w.data, Layout::kAsIs, dx, m, n, k,
                      /*bf16=*/false);
  if (w.dtype == DType::kBF16 && bf16MatmulIsNative()) {
    std::vector<uint16_t> dyBf16(size_t(m * n));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m * n; ++i)
      dyBf16[i] = floatToBf16(dy[i]);
    return gradMatmul(dyBf16.data(), Layout::kAsIs, w.data, Layout::kAsIs, dx,
                      m, n, k, /*bf16=*/true);
  }
  std::vector<float> wide(size_t(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * k; ++i)
    wide[i] = weightElement(w, i);
  return gradMatmul(dy, Layout::kAsIs, wide.data(), Layout::kAsIs, dx, m, n, k,
                    /*bf16=*/false);
}

absl::Status linearGradWeight(const float *dy, const float *x, int64_t m,
                              int64_t n, int64_t k, float *dw) {
  return gradMatmul(dy, Layout::kTransposed, x, Layout::kAsIs, dw, n, m, k,
                    /*bf16=*/false);
}

} // namespace moert::cpu
