//===- EmbeddingGrad.cpp - backward of the token embedding ----------------===//
//
// Positions are bucketed by id first (a stable counting sort), so each
// table row is written once, by one thread, summing its positions in
// ascending order: no atomics and the same sum for any thread count.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"

#include <algorithm>
#include <vector>

namespace moert::cpu {

void embeddingGrad(const int32_t *ids, int64_t n, const float *dy,
                   int64_t vocab, int64_t d, float *dtable) {
  std::vector<int64_t> start(vocab + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    ++start[ids[i] + 1];
  for (int64_t v = 0; v < vocab; ++v)
    start[v + 1] += start[v];
  std::vector<int64_t> positions(n), next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i)
    positions[next[ids[i]]++] = i;
#pragma omp parallel for schedule(static)
  for (int64_t v = 0; v < vocab; ++v) {
    float *row = dtable + v * d;
    std::fill(row, row + d, 0.0f);
    for (int64_t p = start[v]; p < start[v + 1]; ++p) {
      const float *grad = dy + positions[p] * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j)
        row[j] += grad[j];
    }
  }
}

} // namespace moert::cpu
