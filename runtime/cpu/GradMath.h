//===- GradMath.h - a vectorisable exp for the backward kernels -*- C++ -*-===//
//
// glibc's vector exp (libmvec) is only declared under -ffast-math, so
// std::exp in a loop stays a scalar call. This one is plain arithmetic that
// GCC vectorises: 2^n * p(r) with r = x - n ln2 in [-ln2/2, ln2/2] and the
// Cephes expf polynomial, within 1e-7 relative of exp on [-87, 88]. Outside
// it saturates at exp(-87) and exp(88) (no subnormals, no infinities),
// which the softmaxes and sigmoids here do not notice.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_GRADMATH_H
#define MOERT_CPU_GRADMATH_H

#include <cstdint>
#include <cstring>

namespace moert::cpu {

/// x clamped to [lo, hi] by integer masks (NaN passes through).
inline float clampBits(float x, float lo, float hi) {
  uint32_t bits, loBits, hiBits;
  std::memcpy(&bits, &x, sizeof(bits));
  std::memcpy(&loBits, &lo, sizeof(loBits));
  std::memcpy(&hiBits, &hi, sizeof(hiBits));
  uint32_t below = -uint32_t(x < lo), above = -uint32_t(x > hi);
  bits = (bits & ~below) | (loBits & below);
  bits = (bits & ~above) | (hiBits & above);
  float clamped;
  std::memcpy(&clamped, &bits, sizeof(clamped));
  return clamped;
}

inline float vectorExp(float x) {
  // The clamp is a blend of bit patterns, not a select: from a select GCC
  // derives a separate path for the clamped constants and evaluates it on
  // every lane, and x / (1 + exp(88)) there makes subnormals, whose
  // microcode assists made the SwiGLU three times slower. The result is the
  // same (NaN stays NaN).
  float clamped = clampBits(x, -87.0f, 88.0f);
  // Round to nearest by the 1.5 * 2^23 trick (no SSE4.1 round needed).
  constexpr float kShifter = 12582912.0f;
  float n = (clamped * 1.44269504088896341f + kShifter) - kShifter;
  float r = clamped - n * 0.693359375f; // ln2 split in two for accuracy
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

} // namespace moert::cpu

#endif // MOERT_CPU_GRADMATH_H
