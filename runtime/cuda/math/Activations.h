//===- Activations.h - per-element activations ------------------*- C++ -*-===//
//
// The formulas of runtime/cpu/Elementwise.cpp, element by element.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_ACTIVATIONS_H
#define MOERT_CUDA_MATH_ACTIVATIONS_H

#include "runtime/cuda/math/HostDevice.h"

#include <math.h>

namespace moert::cuda_math {

MOEC_HD inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
MOEC_HD inline float silu(float x) { return x / (1.0f + expf(-x)); }
MOEC_HD inline float swiglu(float gate, float up) { return silu(gate) * up; }
/// std::min(std::max(x, -limit), limit), as the CPU takes it: NaN stays NaN.
MOEC_HD inline float clampTo(float x, float limit) {
  float low = x < -limit ? -limit : x;
  return limit < low ? limit : low;
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_ACTIVATIONS_H
