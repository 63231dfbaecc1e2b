//===- Convert.h - moving floats between storage dtypes ---------*- C++ -*-===//

#ifndef MOERT_BASE_CONVERT_H
#define MOERT_BASE_CONVERT_H

#include "runtime/base/DType.h"
#include "runtime/base/Float16.h"

#include <cstring>

namespace moert {

inline bool isFloat(DType type) {
  return type == DType::kF32 || type == DType::kBF16 || type == DType::kF16;
}

/// Element `i` of float storage `data` of dtype `type`, as fp32.
inline float floatAt(const void *data, DType type, int64_t i) {
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  if (type == DType::kF32) {
    float value;
    std::memcpy(&value, bytes + 4 * i, 4);
    return value;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + 2 * i, 2);
  return type == DType::kBF16 ? bf16ToFloat(bits) : f16ToFloat(bits);
}

/// Converts `count` floats between storage dtypes (rounding to nearest even
/// when narrowing); a same-dtype conversion is a copy.
inline void convertFloats(const void *source, DType from, void *target,
                          DType to, int64_t count) {
  if (from == to) {
    std::memcpy(target, source, count * dtypeSize(from));
    return;
  }
  uint8_t *out = static_cast<uint8_t *>(target);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    float value = floatAt(source, from, i);
    if (to == DType::kF32) {
      std::memcpy(out + 4 * i, &value, 4);
    } else {
      uint16_t bits = to == DType::kBF16 ? floatToBf16(value) : floatToF16(value);
      std::memcpy(out + 2 * i, &bits, 2);
    }
  }
}

} // namespace moert

#endif // MOERT_BASE_CONVERT_H
