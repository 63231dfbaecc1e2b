//===- GradMath.h - the backward passes' per-element and per-row math -*- C++ -*-===//
//
// The formulas of runtime/cpu/ElementwiseGrad.cpp, NormRopeGrad.cpp,
// MoeGrad.cpp (routerGrad) and LossGrad.cpp, for the CUDA kernels and the
// CPU tests that hold them to those.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_GRADMATH_H
#define MOERT_CUDA_MATH_GRADMATH_H

#include "runtime/cuda/math/Activations.h"

#include <math.h>
#include <stdint.h>

namespace moert::cuda_math {

/// silu backward: dy * s * (1 + x (1 - s)), s = sigmoid(x).
MOEC_HD inline float siluGrad(float x, float dy) {
  float s = sigmoid(x);
  return dy * s * (1.0f + x * (1.0f - s));
}

/// swiglu backward: dgate = dy * up * silu'(gate), dup = dy * silu(gate).
MOEC_HD inline void swigluGrad(float gate, float up, float dy, float &dgate,
                               float &dup) {
  float s = sigmoid(gate);
  dup = dy * gate * s;
  dgate = dy * up * s * (1.0f + gate * (1.0f - s));
}

/// clamp backward: dy where |x| <= limit (torch's clamp), else 0.
MOEC_HD inline float clampGrad(float x, float dy, float limit) {
  return x >= -limit && x <= limit ? dy : 0.0f;
}

/// softmax(row) into probs, in double as the CPU's RoutingMath.h takes it;
/// returns logsumexp(row).
MOEC_HD inline double softmaxRow(const float *row, int64_t n, double *probs) {
  float best = row[0];
  for (int64_t i = 1; i < n; ++i)
    best = fmaxf(best, row[i]);
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    total += probs[i] = exp(double(row[i]) - best);
  for (int64_t i = 0; i < n; ++i)
    probs[i] /= total;
  return best + log(total);
}

/// Through a token's softmax: dlogit_e = p_e (dp_e - <p, dp>), plus
/// `extra` (nullable) reaching the logits directly.
MOEC_HD inline void softmaxGrad(const double *probs, const double *dprobs,
                                int64_t n, const float *extra, float *out) {
  double projection = 0;
  for (int64_t e = 0; e < n; ++e)
    projection += probs[e] * dprobs[e];
  for (int64_t e = 0; e < n; ++e) {
    out[e] = float(probs[e] * (dprobs[e] - projection));
    if (extra)
      out[e] += extra[e];
  }
}

/// routerTopK backward for one token: through the softmax, the top-k
/// selection (the chosen held fixed) and the renormalisation. `probs` and
/// `dprobs` are scratch of `experts` doubles.
MOEC_HD inline void routerGradRow(const float *logits, const int32_t *chosen,
                                  const float *dweights, const float *extra,
                                  int64_t experts, int64_t k, bool normalize,
                                  double *probs, double *dprobs, float *out) {
  softmaxRow(logits, experts, probs);
  for (int64_t e = 0; e < experts; ++e)
    dprobs[e] = 0;
  if (normalize) {
    // w_j = p_j / c with c the chosen's total: dp_j = (dw_j - <dw, w>) / c.
    double chosenTotal = 0, weighted = 0;
    for (int64_t j = 0; j < k; ++j)
      chosenTotal += probs[chosen[j]];
    for (int64_t j = 0; j < k; ++j)
      weighted += dweights[j] * (probs[chosen[j]] / chosenTotal);
    for (int64_t j = 0; j < k; ++j)
      dprobs[chosen[j]] = (dweights[j] - weighted) / chosenTotal;
  } else {
    for (int64_t j = 0; j < k; ++j)
      dprobs[chosen[j]] = dweights[j];
  }
  softmaxGrad(probs, dprobs, experts, extra, out);
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_GRADMATH_H
