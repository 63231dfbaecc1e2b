//===- Norm.cpp - RMSNorm -------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/WeightElement.h"

#include <cmath>

namespace moert::cpu {

void rmsNorm(const float *x, Weight w, int64_t rows, int64_t d, double eps,
             float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x + r * d;
    float *out = y + r * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += double(in[i]) * in[i];
    float inverse = float(1.0 / std::sqrt(sum / d + eps));
    for (int64_t i = 0; i < d; ++i)
      out[i] = in[i] * inverse * weightElement(w, i);
  }
}

} // namespace moert::cpu
