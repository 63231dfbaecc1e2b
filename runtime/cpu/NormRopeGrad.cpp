//===- NormRopeGrad.cpp - backward of RMSNorm and rotary embedding --------===//
//
// The norm-scale gradient sums over rows: each thread owns whole column
// blocks and walks every row in order, so no partial sums cross threads.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/IsaClones.h"
#include "runtime/cpu/RowSums.h"
#include "runtime/cpu/WeightElement.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moert::cpu {

namespace {

/// dx for rows [begin, end), and each row's inverse norm.
MOERT_ISA_CLONES
void normGradRows(const float *x, const float *scale, const float *dy,
                  int64_t begin, int64_t end, int64_t d, double eps,
                  float *scaled, float *inverses, float *dx) {
  for (int64_t r = begin; r < end; ++r) {
    const float *in = x + r * d, *grad = dy + r * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i)
      scaled[i] = grad[i] * scale[i];
    double inverse = 1.0 / std::sqrt(rowDot(in, in, d) / d + eps);
    inverses[r] = float(inverse);
    float correction =
        float(inverse * inverse * inverse * rowDot(scaled, in, d) / d);
    float *out = dx + r * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i)
      out[i] = float(inverse) * scaled[i] - in[i] * correction;
  }
}

/// dw[begin, begin + width) = sum over rows of dy * x * inverse, walking
/// the rows in order.
MOERT_ISA_CLONES
void normScaleGrad(const float *x, const float *dy, const float *inverses,
                   int64_t rows, int64_t d, int64_t begin, int64_t width,
                   float *dw) {
  constexpr int64_t kBlock = 64;
  double sums[kBlock] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x + r * d + begin, *grad = dy + r * d + begin;
    float inverse = inverses[r];
#pragma omp simd
    for (int64_t i = 0; i < width; ++i)
      sums[i] += double(grad[i] * in[i] * inverse);
  }
  for (int64_t i = 0; i < width; ++i)
    dw[begin + i] = float(sums[i]);
}

} // namespace

void rmsNormGrad(const float *x, Weight w, const float *dy, int64_t rows,
                 int64_t d, double eps, float *dx, float *dw) {
  std::vector<float> scale(d);
  for (int64_t i = 0; i < d; ++i)
    scale[i] = weightElement(w, i);
  // y = x * inverse * w with inverse = (mean(x^2) + eps)^-1/2, so
  // dx = inverse * g - x * inverse^3 / d * <g, x> with g = dy * w.
  std::vector<float> inverses(rows);
  constexpr int64_t kRowsPerTask = 16;
  int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel
  {
    std::vector<float> scaled(d);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t)
      normGradRows(x, scale.data(), dy, t * kRowsPerTask,
                   std::min(rows, (t + 1) * kRowsPerTask), d, eps,
                   scaled.data(), inverses.data(), dx);
  }
  constexpr int64_t kBlock = 64;
  int64_t blocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t block = 0; block < blocks; ++block)
    normScaleGrad(x, dy, inverses.data(), rows, d, block * kBlock,
                  std::min(kBlock, d - block * kBlock), dw);
}

void ropeGrad(float *dy, int64_t batch, int64_t seq, int64_t heads,
              int64_t headDim, double theta, const void *positions,
              DType positionsType) {
  rope(dy, dy, batch, seq, heads, headDim, theta, positions, positionsType,
       /*inverse=*/true);
}

} // namespace moert::cpu
