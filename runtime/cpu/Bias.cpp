//===- Bias.cpp - a bias added to every row, and its gradient -------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/WeightElement.h"

#include <algorithm>
#include <vector>

namespace moert::cpu {

void addBias(const float *x, Weight bias, int64_t rows, int64_t width,
             float *out) {
  std::vector<float> b(width);
  for (int64_t j = 0; j < width; ++j)
    b[j] = weightElement(bias, j);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      out[r * width + j] = x[r * width + j] + b[j];
}

void biasGrad(const float *dy, int64_t rows, int64_t width, float *db) {
  // Threads own column blocks and add rows in order: the same sums for any
  // thread count.
  constexpr int64_t kBlock = 64;
  int64_t blocks = (width + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t block = 0; block < blocks; ++block) {
    int64_t begin = block * kBlock, end = std::min(width, begin + kBlock);
    float sum[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
      for (int64_t j = begin; j < end; ++j)
        sum[j - begin] += dy[r * width + j];
    std::copy(sum, sum + (end - begin), db + begin);
  }
}

} // namespace moert::cpu
