//===- Upcycling.cpp - kernels of initialisation programs -----------------===//

#include "runtime/checkpoint/Init.h"
#include "runtime/cpu/Kernels.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace moert::cpu {
namespace {
absl::Status checkIndices(const int64_t *indices, int64_t count, int64_t limit) {
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= limit)
      return absl::InvalidArgumentError(absl::StrCat(
          "slice index ", indices[i], " is outside [0, ", limit, ")"));
  return absl::OkStatus();
}
} // namespace

void randomIndices(int64_t count, int64_t range, uint64_t seed, uint64_t key,
                   int64_t *out) {
  // The `count` smallest of `range` random keys are a uniform subset.
  std::vector<std::pair<uint64_t, int64_t>> keys(range);
  for (int64_t i = 0; i < range; ++i)
    keys[i] = {randomBitsAt(seed, key, uint64_t(i)), i};
  std::partial_sort(keys.begin(), keys.begin() + count, keys.end());
  for (int64_t i = 0; i < count; ++i)
    out[i] = keys[i].second;
  std::sort(out, out + count);
}

absl::Status sliceMoments(const float *x, int64_t rows, int64_t cols,
                          const int64_t *indices, int64_t count, int64_t axis,
                          float *mean, float *std) {
  if (auto status = checkIndices(indices, count, axis == 0 ? rows : cols);
      !status.ok())
    return status;
  int64_t other = axis == 0 ? cols : rows;
  auto at = [&](int64_t chosen, int64_t j) {
    return axis == 0 ? x[indices[chosen] * cols + j]
                     : x[j * cols + indices[chosen]];
  };
  double sum = 0;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < other; ++j)
      sum += at(i, j);
  int64_t n = count * other;
  double m = n ? sum / n : 0.0, squares = 0;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < other; ++j)
      squares += (at(i, j) - m) * (at(i, j) - m);
  *mean = float(m);
  *std = n > 1 ? float(std::sqrt(squares / double(n - 1))) : 0.0f;
  return absl::OkStatus();
}

absl::Status redrawSlice(const float *x, int64_t rows, int64_t cols,
                         const int64_t *indices, int64_t count, int64_t axis,
                         float mean, float std, bool noise, uint64_t seed,
                         uint64_t key, float *out) {
  if (auto status = checkIndices(indices, count, axis == 0 ? rows : cols);
      !status.ok())
    return status;
  if (out != x)
    std::memcpy(out, x, rows * cols * sizeof(float));
  int64_t other = axis == 0 ? cols : rows;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < other; ++j) {
      int64_t element = axis == 0 ? indices[i] * cols + j : j * cols + indices[i];
      double draw = std * standardNormalAt(seed, key, uint64_t(element));
      out[element] = noise ? float(x[element] + draw) : float(mean + draw);
    }
  return absl::OkStatus();
}

void randomTensor(int64_t n, double std, bool centeredUniform, uint64_t seed,
                  uint64_t key, float *out) {
  if (!centeredUniform) {
    fillNormal(out, n, 0.0f, float(std), seed, key);
    return;
  }
  fillUniform(out, n, seed, key);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) // fixed order: thread-count independent
    sum += out[i];
  double mean = n ? sum / n : 0.0, scale = std * std::sqrt(12.0);
  for (int64_t i = 0; i < n; ++i)
    out[i] = float((out[i] - mean) * scale);
}

void scale(const float *x, int64_t n, double factor, float *out) {
  float f = float(factor);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i)
    out[i] = x[i] * f;
}

void sliceMatrix(const float *x, int64_t rows, int64_t cols, int64_t axis,
                 int64_t offset, int64_t size, float *out) {
  int64_t outRows = axis == 0 ? size : rows, outCols = axis == 0 ? cols : size;
  const float *first = axis == 0 ? x + offset * cols : x + offset;
  for (int64_t r = 0; r < outRows; ++r)
    std::memcpy(out + r * outCols, first + r * cols, outCols * sizeof(float));
}

} // namespace moert::cpu
