//===- NormRopeGrad.cpp - backward of RMSNorm and rotary embedding --------===//
//
// The norm-scale gradient sums over rows: each thread owns whole column
// blocks and walks every row in order, so no partial sums cross threads.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/WeightElement.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moert::cpu {

void rmsNormGrad(const float *x, Weight w, const float *dy, int64_t rows,
                 int64_t d, double eps, float *dx, float *dw) {
  std::vector<float> scale(d);
  for (int64_t i = 0; i < d; ++i)
    scale[i] = weightElement(w, i);
  // y = x * inverse * w with inverse = (mean(x^2) + eps)^-1/2, so
  // dx = inverse * g - x * inverse^3 / d * <g, x> with g = dy * w.
  std::vector<float> inverses(rows);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x + r * d;
    const float *grad = dy + r * d;
    double squares = 0, projection = 0;
    for (int64_t i = 0; i < d; ++i) {
      squares += double(in[i]) * in[i];
      projection += double(grad[i]) * scale[i] * in[i];
    }
    double inverse = 1.0 / std::sqrt(squares / d + eps);
    inverses[r] = float(inverse);
    float correction = float(inverse * inverse * inverse * projection / d);
    float *out = dx + r * d;
    for (int64_t i = 0; i < d; ++i)
      out[i] = float(inverse) * grad[i] * scale[i] - in[i] * correction;
  }
  constexpr int64_t kBlock = 64;
  int64_t blocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t block = 0; block < blocks; ++block) {
    int64_t begin = block * kBlock, width = std::min(kBlock, d - begin);
    double sums[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float *in = x + r * d + begin, *grad = dy + r * d + begin;
      float inverse = inverses[r];
      for (int64_t i = 0; i < width; ++i)
        sums[i] += double(grad[i] * in[i] * inverse);
    }
    for (int64_t i = 0; i < width; ++i)
      dw[begin + i] = float(sums[i]);
  }
}

void ropeGrad(float *dy, int64_t batch, int64_t seq, int64_t heads,
              int64_t headDim, double theta, const void *positions,
              DType positionsType) {
  rope(dy, batch, seq, heads, headDim, theta, positions, positionsType,
       /*inverse=*/true);
}

} // namespace moert::cpu
