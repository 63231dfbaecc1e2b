//===- InitTest.cpp - counter-based initialisation ------------------------===//

#include "runtime/checkpoint/Init.h"

#include <gtest/gtest.h>

#include <cmath>
#include <omp.h>
#include <vector>

using namespace moert;

namespace {
// Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors).
TEST(InitTest, PhiloxMatchesRandom123KnownAnswers) {
  using Block = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32({0, 0, 0, 0}, {0, 0}),
            (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                       {0xffffffff, 0xffffffff}),
            (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                       {0xa4093822, 0x299f31d0}),
            (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(InitTest, StreamsAreReproducibleSliceableAndThreadIndependent) {
  std::vector<float> whole(1000), again(1000), slice(100), oneThread(1000);
  fillNormal(whole.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  fillNormal(again.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  EXPECT_EQ(whole, again);
  fillNormal(slice.data(), 100, 0.0f, 1.0f, 42, keyOf("w"), 100);
  EXPECT_TRUE(std::equal(slice.begin(), slice.end(), whole.begin() + 100));
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  fillNormal(oneThread.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  omp_set_num_threads(threads);
  EXPECT_EQ(whole, oneThread);

  std::vector<float> otherKey(1000), otherSeed(1000);
  fillNormal(otherKey.data(), 1000, 0.0f, 1.0f, 42, keyOf("v"));
  fillNormal(otherSeed.data(), 1000, 0.0f, 1.0f, 43, keyOf("w"));
  EXPECT_NE(whole, otherKey);
  EXPECT_NE(whole, otherSeed);
}

TEST(InitTest, NormalSamplesHaveTheRequestedMoments) {
  const int64_t n = 1000000;
  const double mean = 0.5, std = 0.02;
  std::vector<float> x(n);
  fillNormal(x.data(), n, float(mean), float(std), 7, keyOf("moments"));
  double sum = 0, squares = 0;
  for (float v : x)
    sum += v;
  double sampleMean = sum / n;
  for (float v : x)
    squares += (v - sampleMean) * (v - sampleMean);
  double sampleStd = std::sqrt(squares / (n - 1));
  // The sample mean has standard error std/sqrt(n) = 2e-5: allow 5 of them.
  EXPECT_NEAR(sampleMean, mean, 5 * std / std::sqrt(double(n)));
  // The sample std has relative standard error 1/sqrt(2n) = 0.07%: allow 1%.
  EXPECT_NEAR(sampleStd / std, 1.0, 0.01);

  std::vector<float> u(n);
  fillUniform(u.data(), n, 7, keyOf("uniform"));
  double uniformSum = 0;
  for (float v : u) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    uniformSum += v;
  }
  // Mean of U[0,1) has standard error sqrt(1/12)/sqrt(n) ~ 2.9e-4.
  EXPECT_NEAR(uniformSum / n, 0.5, 5 * 2.9e-4);
}
} // namespace
