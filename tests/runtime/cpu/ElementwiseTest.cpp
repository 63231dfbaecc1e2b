//===- ElementwiseTest.cpp - add, mul, silu, swiglu -----------------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

namespace moert::cpu::testing {
namespace {

double siluOf(double x) { return x / (1 + std::exp(-x)); }

TEST(ElementwiseTest, MatchReference) {
  int64_t n = 37;
  auto a = randomVector(n, 1, 3.0f), b = randomVector(n, 2);
  std::vector<float> sum(n), product(n), activated(n), gated(n);
  add(a.data(), b.data(), n, sum.data());
  mul(a.data(), b.data(), n, product.data());
  silu(a.data(), n, activated.data());
  swiglu(a.data(), b.data(), n, gated.data());
  std::vector<double> refSum(n), refProduct(n), refSilu(n), refSwiglu(n);
  for (int64_t i = 0; i < n; ++i) {
    refSum[i] = double(a[i]) + b[i];
    refProduct[i] = double(a[i]) * b[i];
    refSilu[i] = siluOf(a[i]);
    refSwiglu[i] = siluOf(a[i]) * b[i];
  }
  EXPECT_LE(relativeError(sum, refSum), 1e-6);
  EXPECT_LE(relativeError(product, refProduct), 1e-6);
  EXPECT_LE(relativeError(activated, refSilu), 1e-5);
  EXPECT_LE(relativeError(gated, refSwiglu), 1e-5);
}

TEST(ElementwiseTest, InPlaceAndExtremeInputs) {
  std::vector<float> x = {-100.0f, -20.0f, 0.0f, 20.0f, 100.0f};
  std::vector<float> up(x.size(), 2.0f);
  swiglu(x.data(), up.data(), int64_t(x.size()), x.data());
  EXPECT_FLOAT_EQ(x[0], 0.0f);
  EXPECT_NEAR(x[1], 2 * siluOf(-20.0), 1e-12);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_FLOAT_EQ(x[3], 40.0f);
  EXPECT_FLOAT_EQ(x[4], 200.0f);
}

} // namespace
} // namespace moert::cpu::testing
