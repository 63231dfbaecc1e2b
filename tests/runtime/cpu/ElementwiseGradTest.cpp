//===- ElementwiseGradTest.cpp - backward of SwiGLU and the embedding -----===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/GradMath.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace moert::cpu::testing {
namespace {

double siluOf(double x) { return x / (1.0 + std::exp(-x)); }

TEST(VectorExpTest, WithinARoundingErrorOfExpAndSaturates) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    double exact = std::exp(double(x));
    worst = std::max(worst, std::abs(vectorExp(x) - exact) / exact);
  }
  EXPECT_LE(worst, 2e-7);
  EXPECT_EQ(vectorExp(0.0f), 1.0f);
  EXPECT_LT(vectorExp(-1000.0f), 1e-37f);
  EXPECT_GE(vectorExp(-1000.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(vectorExp(1000.0f)));
}

TEST(SiluGradTest, MatchesFiniteDifferences) {
  int64_t n = 1001; // not a multiple of any vector width
  auto x = randomVector(n, 1, 3.0f), r = randomVector(n, 2);
  std::vector<float> ours(n);
  siluGrad(x.data(), r.data(), n, ours.data());
  auto dx = numericGradient(x, [&](const std::vector<double> &xs) {
    double loss = 0;
    for (int64_t i = 0; i < n; ++i)
      loss += siluOf(xs[i]) * r[i];
    return loss;
  });
  EXPECT_LE(relativeError(ours, dx), kGradTolerance);
}

TEST(SwigluGradTest, MatchesFiniteDifferences) {
  int64_t n = 517;
  auto gate = randomVector(n, 3, 3.0f), up = randomVector(n, 4);
  auto r = randomVector(n, 5);
  std::vector<float> dgate(n), dup(n);
  swigluGrad(gate.data(), up.data(), r.data(), n, dgate.data(), dup.data());
  auto loss = [&](const std::vector<double> &g, const std::vector<double> &u) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      sum += siluOf(g[i]) * u[i] * r[i];
    return sum;
  };
  auto dgateRef = numericGradient(
      gate, [&](const std::vector<double> &g) { return loss(g, toDouble(up)); });
  auto dupRef = numericGradient(
      up, [&](const std::vector<double> &u) { return loss(toDouble(gate), u); });
  EXPECT_LE(relativeError(dgate, dgateRef), kGradTolerance);
  EXPECT_LE(relativeError(dup, dupRef), kGradTolerance);
}

TEST(EmbeddingGradTest, MatchesFiniteDifferencesWithRepeatsAndUnusedIds) {
  int64_t vocab = 11, d = 7;
  std::vector<int32_t> ids = {3, 0, 3, 10, 5, 3, 0, 9};
  int64_t n = int64_t(ids.size());
  auto table = randomVector(vocab * d, 6), r = randomVector(n * d, 7);
  std::vector<float> ours(vocab * d, -1.0f);
  embeddingGrad(ids.data(), n, r.data(), vocab, d, ours.data());
  auto dtable = numericGradient(table, [&](const std::vector<double> &t) {
    double loss = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j)
        loss += t[ids[i] * d + j] * r[i * d + j];
    return loss;
  });
  EXPECT_LE(relativeError(ours, dtable), kGradTolerance);
  for (int32_t unused : {1, 2, 4, 6, 7, 8})
    for (int64_t j = 0; j < d; ++j)
      EXPECT_EQ(ours[unused * d + j], 0.0f) << "id " << unused;
}

TEST(EmbeddingGradTest, SameResultOnOneAndTwoThreads) {
  int64_t vocab = 97, d = 33, n = 2000;
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i)
    ids[i] = int32_t((i * 7919) % 61); // ids 61..96 unused
  auto dy = randomVector(n * d, 8);
  std::vector<float> one(vocab * d), two(vocab * d);
  withThreads(1, [&] {
    embeddingGrad(ids.data(), n, dy.data(), vocab, d, one.data());
  });
  withThreads(2, [&] {
    embeddingGrad(ids.data(), n, dy.data(), vocab, d, two.data());
  });
  EXPECT_EQ(one, two);
}

} // namespace
} // namespace moert::cpu::testing
