//===- Norm.cpp - RMSNorm -------------------------------------------------===//

#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/RowSums.h"
#include "runtime/cpu/StoredTile.h"
#include "runtime/cpu/WeightElement.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moert::cpu {
namespace {

struct NormScratch;

MOERT_ISA_CLONES
void normalizeRows(const float *x, const float *scale, int64_t begin,
                   int64_t end, int64_t d, double eps, float *y) {
  for (int64_t r = begin; r < end; ++r) {
    const float *in = x + r * d;
    float *out = y + r * d;
    float inverse = float(1.0 / std::sqrt(rowDot(in, in, d) / d + eps));
#pragma omp simd
    for (int64_t i = 0; i < d; ++i)
      out[i] = in[i] * inverse * scale[i];
  }
}

/// rmsNorm into y stored as fp32 or bf16.
template <typename O>
void normalize(const float *x, Weight w, int64_t rows, int64_t d, double eps,
               O *y) {
  std::vector<float> scale(d);
  for (int64_t i = 0; i < d; ++i)
    scale[i] = weightElement(w, i);
  constexpr int64_t kRowsPerTask = 16;
  int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    int64_t begin = t * kRowsPerTask, end = std::min(rows, begin + kRowsPerTask);
    computeStored<NormScratch>(y + begin * d, (end - begin) * d, [&](float *to) {
      normalizeRows(x + begin * d, scale.data(), 0, end - begin, d, eps, to);
    });
  }
}
} // namespace

void rmsNorm(const float *x, Weight w, int64_t rows, int64_t d, double eps,
             float *y) {
  normalize(x, w, rows, d, eps, y);
}

void rmsNormToBf16(const float *x, Weight w, int64_t rows, int64_t d,
                   double eps, uint16_t *y) {
  normalize(x, w, rows, d, eps, y);
}

} // namespace moert::cpu
