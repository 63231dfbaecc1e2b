//===- DType.h - element types the runtime stores and computes ------------===//

#ifndef MOERT_BASE_DTYPE_H
#define MOERT_BASE_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace moert {

enum class DType : uint8_t { kF32, kBF16, kF16, kI32, kI64 };

constexpr size_t dtypeSize(DType type) {
  switch (type) {
  case DType::kF32:
  case DType::kI32:
    return 4;
  case DType::kBF16:
  case DType::kF16:
    return 2;
  case DType::kI64:
    return 8;
  }
  return 0;
}

/// The safetensors name of a dtype ("F32", "BF16", ...).
constexpr const char *dtypeName(DType type) {
  switch (type) {
  case DType::kF32:
    return "F32";
  case DType::kBF16:
    return "BF16";
  case DType::kF16:
    return "F16";
  case DType::kI32:
    return "I32";
  case DType::kI64:
    return "I64";
  }
  return "?";
}

// Debian's Abseil predates C++17's string_view: names are C strings so that
// they go into absl::StrCat directly.
inline std::optional<DType> dtypeFromName(std::string_view name) {
  for (DType type : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32,
                     DType::kI64})
    if (dtypeName(type) == name)
      return type;
  return std::nullopt;
}

} // namespace moert

#endif // MOERT_BASE_DTYPE_H
