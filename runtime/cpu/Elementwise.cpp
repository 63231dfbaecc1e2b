//===- Elementwise.cpp - add, mul, clamp, gates, SwiGLU activations ------===//

#include "runtime/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace moert::cpu {

void add(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

void mul(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] * b[i];
}

void silu(const float *x, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void swiglu(const float *gate, const float *up, int64_t n, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void clamp(const float *x, int64_t n, float limit, float *out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = std::min(std::max(x[i], -limit), limit);
}

void sigmoidGate(const float *x, const float *gate, int64_t rows,
                 int64_t width, float *out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float s = 1.0f / (1.0f + std::exp(-gate[r]));
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      out[r * width + j] = x[r * width + j] * s;
  }
}

} // namespace moert::cpu
