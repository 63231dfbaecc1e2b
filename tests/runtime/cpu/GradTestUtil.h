//===- GradTestUtil.h - finite differences for the gradient tests ---------===//
//
// Each backward kernel is checked against central differences of a naive
// float64 forward written in the test, through a scalar loss
// sum(forward(x) * r) for a fixed random r, whose gradient is the VJP with
// dy = r. With the forward in double, eps = 1e-4 keeps the truncation error
// (about eps^2 |f'''| ~ 1e-8 relative) and the rounding error (about
// 1e-16 |loss| / eps ~ 1e-12) far below the 1e-4 tolerance that the fp32
// kernels are held to.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TESTS_CPU_GRADTESTUTIL_H
#define MOERT_TESTS_CPU_GRADTESTUTIL_H

#include "tests/runtime/cpu/KernelTestUtil.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace moert::cpu::testing {

constexpr double kFiniteDifferenceStep = 1e-4;
constexpr double kGradTolerance = 1e-5;

inline std::vector<double> toDouble(const std::vector<float> &values) {
  return std::vector<double>(values.begin(), values.end());
}

/// sum(y * r): the loss whose gradient is the VJP with dy = r.
inline double weightedSum(const std::vector<double> &y,
                          const std::vector<float> &r) {
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i)
    sum += y[i] * r[i];
  return sum;
}

/// d loss / d point by central differences in double; `loss` takes the
/// point as doubles.
template <typename Loss>
std::vector<double> numericGradient(const std::vector<float> &point,
                                    Loss loss,
                                    double eps = kFiniteDifferenceStep) {
  std::vector<double> x = toDouble(point), gradient(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double saved = x[i];
    x[i] = saved + eps;
    double up = loss(x);
    x[i] = saved - eps;
    double down = loss(x);
    x[i] = saved;
    gradient[i] = (up - down) / (2 * eps);
  }
  return gradient;
}

/// Logits whose experts are at least 0.3 apart per token, so the top-k
/// choice is decisive.
inline std::vector<float> decisiveLogits(int64_t tokens, int64_t experts,
                                         unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> jitter(-0.2f, 0.2f);
  std::vector<float> logits(tokens * experts);
  std::vector<int> order(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), gen);
    for (int64_t e = 0; e < experts; ++e)
      logits[t * experts + e] = 0.7f * order[e] - 1.5f + jitter(gen);
  }
  return logits;
}

} // namespace moert::cpu::testing

#endif // MOERT_TESTS_CPU_GRADTESTUTIL_H
