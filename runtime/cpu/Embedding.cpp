//===- Embedding.cpp - token embedding lookup -----------------------------===//

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/WeightElement.h"

#include "absl/strings/str_cat.h"

#include <cstring>

namespace moert::cpu {

absl::Status embedding(Weight table, int64_t vocab, int64_t d,
                       const int32_t *ids, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at position ", i,
                       " is outside the vocabulary [0, ", vocab, ")"));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    int64_t base = int64_t(ids[i]) * d;
    if (table.dtype == DType::kF32) {
      std::memcpy(out + i * d, static_cast<const float *>(table.data) + base,
                  d * sizeof(float));
      continue;
    }
    for (int64_t j = 0; j < d; ++j)
      out[i * d + j] = weightElement(table, base + j);
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
