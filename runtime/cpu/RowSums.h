//===- RowSums.h - dot products of rows in a fixed order --------*- C++ -*-===//
//
// Internal to the CPU kernels (norms, combine): sum of a[i] * b[i] kept in
// kLanes partial sums, one per lane, combined in double at the end. The
// lanes vectorise without reassociation, so the order of the sum is fixed
// (the same for any thread count), and no sum runs through one long
// dependency chain. The AVX2 and AVX-512 clones fuse multiply-adds, so
// their values may differ from the baseline's in the last bit.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_ROWSUMS_H
#define MOERT_CPU_ROWSUMS_H

#include "runtime/cpu/IsaClones.h"

#include <cstdint>

namespace moert::cpu {

MOERT_ISA_INLINE double rowDot(const float *a, const float *b, int64_t n) {
  constexpr int64_t kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l)
      lanes[l] += a[i + l] * b[i + l];
  double sum = 0;
  for (; i < n; ++i)
    sum += double(a[i]) * b[i];
  for (int64_t l = 0; l < kLanes; ++l)
    sum += lanes[l];
  return sum;
}

} // namespace moert::cpu

#endif // MOERT_CPU_ROWSUMS_H
