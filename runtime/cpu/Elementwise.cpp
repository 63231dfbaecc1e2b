//===- Elementwise.cpp - add, mul and the SwiGLU activations --------------===//

#include "runtime/cpu/Kernels.h"

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

} // namespace moert::cpu
