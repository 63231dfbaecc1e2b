//===- Storage.h - reading and writing stored elements ----------*- C++ -*-===//
//
// bf16 and f16 as the runtime stores them (uint16_t), converted as
// runtime/base/Float16.h converts them on the host: round to nearest even,
// NaN stays NaN.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_STORAGE_H
#define MOERT_CUDA_MATH_STORAGE_H

#include "runtime/base/DType.h"
#include "runtime/cuda/math/HostDevice.h"

#include <cstdint>
#include <cstring>

namespace moert::cuda_math {

MOEC_HD inline float bitsToFloat(uint32_t bits) {
  float value;
  memcpy(&value, &bits, sizeof(value));
  return value;
}
MOEC_HD inline uint32_t floatToBits(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof(bits));
  return bits;
}

MOEC_HD inline float bf16ToFloat(uint16_t value) {
  return bitsToFloat(uint32_t(value) << 16);
}
MOEC_HD inline uint16_t floatToBf16(float value) {
  uint32_t bits = floatToBits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((bits >> 16) | 0x40); // keep NaN a (quiet) NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

MOEC_HD inline float f16ToFloat(uint16_t value) {
  uint32_t sign = uint32_t(value & 0x8000u) << 16;
  uint32_t exponent = (value >> 10) & 0x1fu;
  uint32_t mantissa = value & 0x3ffu;
  if (exponent == 0x1f)
    return bitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return bitsToFloat(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24 is exact in fp32.
  float magnitude = float(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

/// Element `i` of a weight stored as fp32, bf16 or f16.
MOEC_HD inline float loadWeight(const void *data, DType dtype, int64_t i) {
  switch (dtype) {
  case DType::kBF16:
    return bf16ToFloat(static_cast<const uint16_t *>(data)[i]);
  case DType::kF16:
    return f16ToFloat(static_cast<const uint16_t *>(data)[i]);
  default:
    return static_cast<const float *>(data)[i];
  }
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_STORAGE_H
