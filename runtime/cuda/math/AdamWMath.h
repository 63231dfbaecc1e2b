//===- AdamWMath.h - one AdamW element update -------------------*- C++ -*-===//
//
// runtime/train/AdamW.cpp's update of one element, in fp32 with the
// constants it forms (AdamWStep), for the device optimiser and the CPU
// test that holds the two together.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_ADAMWMATH_H
#define MOERT_CUDA_MATH_ADAMWMATH_H

#include "runtime/cuda/math/HostDevice.h"

#include <math.h>

namespace moert::cuda_math {

/// Updates m and v from the gradient element and returns the new master.
MOEC_HD inline float adamwElement(float master, float grad, float &m,
                                  float &v, float decayFactor, float stepSize,
                                  float invBias2Sqrt, float beta1, float beta2,
                                  float eps, float gradScale) {
  float g = grad * gradScale;
  float mi = beta1 * m + (1.0f - beta1) * g;
  float vi = beta2 * v + (1.0f - beta2) * g * g;
  m = mi;
  v = vi;
  return master * decayFactor - stepSize * mi / (sqrtf(vi) * invBias2Sqrt + eps);
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_ADAMWMATH_H
