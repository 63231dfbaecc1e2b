//===- Labels.h - label checks shared by the loss kernels -------*- C++ -*-===//

#ifndef MOERT_CPU_LABELS_H
#define MOERT_CPU_LABELS_H

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include <cstdint>

namespace moert::cpu {

/// How many of `rows` labels are predicted (not ignoreIndex); a label
/// outside [0, vocab) is an error naming its position.
inline absl::StatusOr<int64_t> countPredicted(const int32_t *labels,
                                              int64_t rows, int64_t vocab,
                                              int64_t ignoreIndex) {
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignoreIndex)
      continue;
    if (labels[r] < 0 || labels[r] >= vocab)
      return absl::InvalidArgumentError(
          absl::StrCat("label ", labels[r], " at position ", r,
                       " is outside the vocabulary [0, ", vocab, ")"));
    ++counted;
  }
  return counted;
}

} // namespace moert::cpu

#endif // MOERT_CPU_LABELS_H
