//===- RoutingMath.h - pieces shared by routing and loss kernels -*- C++ -*-===//

#ifndef MOERT_CPU_ROUTINGMATH_H
#define MOERT_CPU_ROUTINGMATH_H

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace moert::cpu {

/// softmax(row) into probs, in double; returns logsumexp(row).
inline double softmax(const float *row, int64_t n, double *probs) {
  float best = *std::max_element(row, row + n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    total += probs[i] = std::exp(double(row[i]) - best);
  for (int64_t i = 0; i < n; ++i)
    probs[i] /= total;
  return best + std::log(total);
}

/// The grouped row of each slot, inverting dispatch's sourceSlots; an error
/// unless they are a permutation of [0, slots).
inline absl::Status invertSlots(const int32_t *sourceSlots, int64_t slots,
                                std::vector<int64_t> &rowOfSlot) {
  rowOfSlot.assign(slots, -1);
  for (int64_t r = 0; r < slots; ++r) {
    int32_t slot = sourceSlots[r];
    if (slot < 0 || slot >= slots || rowOfSlot[slot] != -1)
      return absl::InvalidArgumentError(absl::StrCat(
          "source slots are not a permutation of [0, ", slots, ")"));
    rowOfSlot[slot] = r;
  }
  return absl::OkStatus();
}

} // namespace moert::cpu

#endif // MOERT_CPU_ROUTINGMATH_H
