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
  // The same fp32 angles as rope(); the transpose of a rotation by `angle`
  // is the rotation by -angle.
  int64_t half = headDim / 2;
  std::vector<float> inverseFrequency(half);
  for (int64_t i = 0; i < half; ++i)
    inverseFrequency[i] =
        1.0f / std::pow(float(theta), float(2 * i) / float(headDim));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      int64_t index = b * seq + s;
      float position =
          !positions ? float(s)
          : positionsType == DType::kI64
              ? float(static_cast<const int64_t *>(positions)[index])
              : float(static_cast<const int32_t *>(positions)[index]);
      float *row = dy + index * heads * headDim;
      for (int64_t i = 0; i < half; ++i) {
        float angle = position * inverseFrequency[i];
        float c = std::cos(angle), sn = std::sin(angle);
        for (int64_t h = 0; h < heads; ++h) {
          float *head = row + h * headDim;
          float first = head[i], second = head[i + half];
          head[i] = first * c + second * sn;
          head[i + half] = second * c - first * sn;
        }
      }
    }
}

} // namespace moert::cpu
