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
          DType positionsType, bool inverse) {
  int64_t half = headDim / 2;
  std::vector<float> inverseFrequency(half);
  for (int64_t i = 0; i < half; ++i)
    inverseFrequency[i] =
        1.0f / std::pow(float(theta), float(2 * i) / float(headDim));
  auto positionOf = [&](int64_t b, int64_t s) {
    int64_t index = b * seq + s;
    return !positions ? float(s)
           : positionsType == DType::kI64
               ? float(static_cast<const int64_t *>(positions)[index])
               : float(static_cast<const int32_t *>(positions)[index]);
  };
  // cos and sin per (row, i): one table of seq rows when positions are
  // 0..S-1 (shared by the batch), else one row per token.
  int64_t tableRows = positions ? batch * seq : seq;
  std::vector<float> cosines(tableRows * half), sines(tableRows * half);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < tableRows; ++r) {
    float position = positions ? positionOf(r / seq, r % seq) : float(r);
    for (int64_t i = 0; i < half; ++i) {
      float angle = position * inverseFrequency[i];
      cosines[r * half + i] = std::cos(angle);
      // The transpose of a rotation by `angle` is the rotation by -angle.
      sines[r * half + i] = inverse ? -std::sin(angle) : std::sin(angle);
    }
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      int64_t index = b * seq + s;
      int64_t tableRow = positions ? index : s;
      const float *c = cosines.data() + tableRow * half;
      const float *sn = sines.data() + tableRow * half;
      for (int64_t h = 0; h < heads; ++h) {
        float *head = x + (index * heads + h) * headDim;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          float first = head[i], second = head[i + half];
          head[i] = first * c[i] - second * sn[i];
          head[i + half] = second * c[i] + first * sn[i];
        }
      }
    }
}

} // namespace moert::cpu
