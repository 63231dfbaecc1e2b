//===- Rope.cpp - rotary position embedding -------------------------------===//
//
// Angles are computed in fp32 exactly as Hugging Face's LlamaRotaryEmbedding
// does (inv_freq in fp32, pos * inv_freq in fp32, cos/sin in fp32), so long
// positions lose the same precision there and here.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"

#include <cmath>
#include <vector>

namespace moert::cpu {

void rope(float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, const void *positions,
          DType positionsType) {
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
      float *row = x + index * heads * headDim;
      for (int64_t i = 0; i < half; ++i) {
        float angle = position * inverseFrequency[i];
        float c = std::cos(angle), sn = std::sin(angle);
        for (int64_t h = 0; h < heads; ++h) {
          float *head = row + h * headDim;
          float first = head[i], second = head[i + half];
          head[i] = first * c - second * sn;
          head[i + half] = second * c + first * sn;
        }
      }
    }
}

} // namespace moert::cpu
