//===- RowMath.h - per-row arithmetic: norms, rotations, routing -*- C++ -*-===//

#ifndef MOERT_CUDA_MATH_ROWMATH_H
#define MOERT_CUDA_MATH_ROWMATH_H

#include "runtime/cuda/math/HostDevice.h"

#include <math.h>
#include <stdint.h>

namespace moert::cuda_math {

/// RMSNorm's row scale from the row's sum of squares, in double as the CPU
/// kernel takes it.
MOEC_HD inline float rmsInverse(double sumSquares, int64_t d, double eps) {
  return float(1.0 / sqrt(sumSquares / double(d) + eps));
}

/// RoPE's frequency of pair i of a head, in fp32 as Hugging Face's
/// LlamaRotaryEmbedding computes it (the CUDA backend takes it from the
/// host, whose powf is the CPU kernel's).
MOEC_HD inline float ropeInverseFrequency(int64_t i, int64_t headDim,
                                          float theta) {
  return 1.0f / powf(theta, float(2 * i) / float(headDim));
}

/// Rotates the pair (first, second) by an angle of cosine c and sine s.
MOEC_HD inline void ropeRotate(float first, float second, float c, float s,
                               float &outFirst, float &outSecond) {
  outFirst = first * c - second * s;
  outSecond = second * c + first * s;
}

/// The router's top-k of one token: softmax over the logits (max
/// subtracted, exp in double rounded to float, so host and device agree,
/// sum in double), the k largest probabilities with ties to the lower
/// expert, weights renormalised over the chosen when `normalize`.
/// `probs` is scratch of `experts` floats. The CPU kernel's order exactly.
MOEC_HD inline void routerTopKRow(const float *logits, int experts, int k,
                                  bool normalize, float *probs, float *weights,
                                  int32_t *indices) {
  float best = logits[0];
  for (int e = 1; e < experts; ++e)
    best = fmaxf(best, logits[e]);
  double total = 0;
  for (int e = 0; e < experts; ++e) {
    probs[e] = float(exp(double(logits[e] - best))); // as the CPU's
    total += probs[e];
  }
  for (int e = 0; e < experts; ++e)
    probs[e] = float(probs[e] / total);
  double chosen = 0;
  for (int j = 0; j < k; ++j) {
    int pick = -1;
    for (int e = 0; e < experts; ++e) {
      bool taken = false;
      for (int i = 0; i < j; ++i)
        taken |= indices[i] == e;
      if (!taken && (pick < 0 || probs[e] > probs[pick]))
        pick = e;
    }
    indices[j] = pick;
    chosen += probs[pick];
  }
  for (int j = 0; j < k; ++j)
    weights[j] =
        normalize ? float(probs[indices[j]] / chosen) : probs[indices[j]];
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_ROWMATH_H
