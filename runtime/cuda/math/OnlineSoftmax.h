//===- OnlineSoftmax.h - attention's softmax, one key tile at a time -*- C++ -*-===//
//
// Flash attention's running state of one query row: the largest score seen,
// the sum of exp(score - largest) and the output accumulated with those
// weights. Each key tile updates it; no row of scores is ever kept whole.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_MATH_ONLINESOFTMAX_H
#define MOERT_CUDA_MATH_ONLINESOFTMAX_H

#include "runtime/cuda/math/HostDevice.h"

#include <math.h>

namespace moert::cuda_math {

struct SoftmaxRow {
  float largest = -INFINITY;
  float total = 0.0f;
};

/// Takes a tile's largest score; returns the factor that rescales what was
/// accumulated before (0 when nothing was).
MOEC_HD inline float softmaxRescale(SoftmaxRow &row, float tileLargest) {
  float largest = fmaxf(row.largest, tileLargest);
  float factor = row.largest == -INFINITY ? 0.0f : expf(row.largest - largest);
  row.largest = largest;
  row.total *= factor;
  return factor;
}

/// The weight of one score of the tile (0 for a masked one), added to the
/// row's total.
MOEC_HD inline float softmaxWeight(SoftmaxRow &row, float score) {
  float weight = score == -INFINITY ? 0.0f : expf(score - row.largest);
  row.total += weight;
  return weight;
}

/// The factor that turns the accumulated output into the attention output.
MOEC_HD inline float softmaxFinish(const SoftmaxRow &row) {
  return row.total > 0.0f ? 1.0f / row.total : 0.0f;
}

} // namespace moert::cuda_math

#endif // MOERT_CUDA_MATH_ONLINESOFTMAX_H
