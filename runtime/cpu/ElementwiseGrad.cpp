//===- ElementwiseGrad.cpp - backward of activations, clamp and gates ----===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"

#include <cmath>

namespace moert::cpu {

void siluGrad(const float *x, const float *dy, int64_t n, float *dx) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float s = 1.0f / (1.0f + vectorExp(-x[i]));
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

void swigluGrad(const float *gate, const float *up, const float *dy,
                int64_t n, float *dgate, float *dup) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i], s = 1.0f / (1.0f + vectorExp(-g));
    float grad = dy[i];
    dup[i] = grad * g * s;
    dgate[i] = grad * up[i] * s * (1.0f + g * (1.0f - s));
  }
}

void clampGrad(const float *x, const float *dy, int64_t n, float limit,
               float *dx) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    dx[i] = x[i] >= -limit && x[i] <= limit ? dy[i] : 0.0f;
}

void sigmoidGateGrad(const float *x, const float *gate, const float *dy,
                     int64_t rows, int64_t width, float *dx, float *dgate) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float s = 1.0f / (1.0f + std::exp(-gate[r]));
    double dot = 0;
    for (int64_t j = 0; j < width; ++j) {
      dot += double(dy[r * width + j]) * x[r * width + j];
      dx[r * width + j] = dy[r * width + j] * s;
    }
    dgate[r] = float(dot * s * (1.0f - s));
  }
}

} // namespace moert::cpu
