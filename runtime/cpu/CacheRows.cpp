//===- CacheRows.cpp - rows into the caches, rows out of a batch ----------===//

#include "runtime/cpu/Kernels.h"

#include "absl/strings/str_cat.h"

#include <cstring>

namespace moert::cpu {

absl::Status cacheWrite(const float *rows, const int32_t *positions,
                        int64_t batch, int64_t count, int64_t width,
                        int64_t capacity, float *cache) {
  for (int64_t i = 0; i < batch * count; ++i)
    if (positions[i] >= capacity)
      return absl::OutOfRangeError(
          absl::StrCat("position ", positions[i], " of sequence ", i / count,
                       " is past the cache capacity ", capacity));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < count; ++t)
      if (int32_t position = positions[b * count + t]; position >= 0)
        std::memcpy(cache + (b * capacity + position) * width,
                    rows + (b * count + t) * width, width * sizeof(float));
  return absl::OkStatus();
}

absl::Status selectRows(const float *input, const int32_t *index,
                        int64_t batch, int64_t rows, int64_t picks,
                        int64_t width, float *out) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < picks; ++n) {
      int32_t row = index[b * picks + n];
      if (row < 0 || row >= rows)
        return absl::OutOfRangeError(absl::StrCat(
            "row index ", row, " of sequence ", b, " is outside [0, ", rows,
            ")"));
      std::memcpy(out + (b * picks + n) * width,
                  input + (b * rows + row) * width, width * sizeof(float));
    }
  return absl::OkStatus();
}

} // namespace moert::cpu
