//===- ElementwiseGrad.cpp - backward of the SwiGLU activations -----------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"

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

} // namespace moert::cpu
