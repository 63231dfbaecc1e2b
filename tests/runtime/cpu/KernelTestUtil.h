//===- KernelTestUtil.h - inputs and comparisons for the kernel tests -----===//

#ifndef MOERT_TESTS_CPU_KERNELTESTUTIL_H
#define MOERT_TESTS_CPU_KERNELTESTUTIL_H

#include "runtime/base/Float16.h"

#include <cmath>
#include <cstdint>
#include <omp.h>
#include <random>
#include <vector>

namespace moert::cpu::testing {

inline std::vector<float> randomVector(size_t n, unsigned seed,
                                       float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float &value : values)
    value = normal(gen);
  return values;
}

/// ||ours - ref|| / ||ref||.
inline double relativeError(const std::vector<float> &ours,
                            const std::vector<double> &ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (ours[i] - ref[i]) * (ours[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(diff / norm);
}

inline std::vector<uint16_t> toBf16(const std::vector<float> &values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    bits[i] = floatToBf16(values[i]);
  return bits;
}

/// The values a bf16 round trip leaves.
inline std::vector<float> roundedToBf16(const std::vector<float> &values) {
  std::vector<float> rounded(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    rounded[i] = bf16ToFloat(floatToBf16(values[i]));
  return rounded;
}

/// y[m, n] = x[m, k] w[n, k]^T in double (x and w in float or double).
template <typename T>
std::vector<double> naiveLinear(const std::vector<T> &x,
                                const std::vector<T> &w, int64_t m, int64_t k,
                                int64_t n) {
  std::vector<double> y(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t t = 0; t < k; ++t)
        y[i * n + j] += double(x[i * k + t]) * w[j * k + t];
  return y;
}

/// Runs `body` with `threads` OpenMP threads, then restores the setting.
template <typename Body> void withThreads(int threads, Body body) {
  int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  body();
  omp_set_num_threads(previous);
}

} // namespace moert::cpu::testing

#endif // MOERT_TESTS_CPU_KERNELTESTUTIL_H
