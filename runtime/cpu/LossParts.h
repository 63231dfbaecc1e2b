//===- LossParts.h - pieces shared by the loss kernels ----------*- C++ -*-===//

#ifndef MOERT_CPU_LOSSPARTS_H
#define MOERT_CPU_LOSSPARTS_H

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "runtime/cpu/Kernels.h"

#include <cstdint>
#include <vector>

namespace moert::cpu {

/// Sums `values` over the ranks of a multi-process batch (nothing to do
/// for one process).
inline absl::Status sumOverRanks(comm::Communicator *ranks, double *values,
                                 int64_t count) {
  if (!ranks || ranks->size() == 1)
    return absl::OkStatus();
  return ranks->allReduceSum(values, count);
}

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

/// How often each expert is among the top-k of a token, over the router
/// logits of all layers (the same choice as the routing, ties included) and
/// the tokens `mask` counts; `total` receives the number of those tokens.
inline std::vector<double>
topKAssignments(const std::vector<const float *> &logits,
                const std::vector<int64_t> &tokens, int64_t experts,
                int64_t k, TokenMask mask, double &total) {
  std::vector<double> assignments(experts, 0.0);
  total = 0;
  for (size_t layer = 0; layer < logits.size(); ++layer) {
    int64_t n = tokens[layer];
    std::vector<float> weights(n * k);
    std::vector<int32_t> chosen(n * k);
    routerTopK(logits[layer], n, experts, k, false, weights.data(),
               chosen.data());
    for (int64_t t = 0; t < n; ++t) {
      if (!mask.counts(t))
        continue;
      for (int64_t j = 0; j < k; ++j)
        assignments[chosen[t * k + j]] += 1;
      ++total;
    }
  }
  return assignments;
}

} // namespace moert::cpu

#endif // MOERT_CPU_LOSSPARTS_H
