//===- RandomFillTest.cpp - reproducible, sliceable, well-distributed -----===//

#include "runtime/checkpoint/Init.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <vector>

using namespace moert;

namespace {
/// Bitwise equality: NaN-proof and no tolerance hiding a drift.
bool sameBits(const float *a, const float *b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

TEST(RandomFill, SameSeedAndKeyGiveTheSameValues) {
  std::vector<float> first(1000), second(1000), u1(1000), u2(1000);
  fillNormal(first.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  fillNormal(second.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  EXPECT_TRUE(sameBits(first.data(), second.data(), 1000));
  fillUniform(u1.data(), 1000, 42, keyOf("w"));
  fillUniform(u2.data(), 1000, 42, keyOf("w"));
  EXPECT_TRUE(sameBits(u1.data(), u2.data(), 1000));
}

TEST(RandomFill, ASliceEqualsThatPartOfTheWhole) {
  std::vector<float> whole(1000), slice(100);
  fillNormal(whole.data(), 1000, 0.1f, 2.0f, 42, keyOf("w"));
  fillNormal(slice.data(), 100, 0.1f, 2.0f, 42, keyOf("w"), 100);
  EXPECT_TRUE(sameBits(slice.data(), whole.data() + 100, 100));

  fillUniform(whole.data(), 1000, 42, keyOf("w"));
  fillUniform(slice.data(), 100, 42, keyOf("w"), 100);
  EXPECT_TRUE(sameBits(slice.data(), whole.data() + 100, 100));
}

TEST(RandomFill, ThreadCountDoesNotMatter) {
  // Large enough to run in parallel.
  const int64_t n = 1 << 18;
  std::vector<float> many(n), one(n);
  fillNormal(many.data(), n, 0.0f, 1.0f, 5, keyOf("t"));
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  fillNormal(one.data(), n, 0.0f, 1.0f, 5, keyOf("t"));
  omp_set_num_threads(3);
  std::vector<float> three(n);
  fillNormal(three.data(), n, 0.0f, 1.0f, 5, keyOf("t"));
  omp_set_num_threads(threads);
  EXPECT_TRUE(sameBits(many.data(), one.data(), n));
  EXPECT_TRUE(sameBits(many.data(), three.data(), n));
}

TEST(RandomFill, DifferentKeysAndSeedsGiveDifferentStreams) {
  std::vector<float> base(1000), otherKey(1000), otherSeed(1000);
  fillNormal(base.data(), 1000, 0.0f, 1.0f, 42, keyOf("w"));
  fillNormal(otherKey.data(), 1000, 0.0f, 1.0f, 42, keyOf("v"));
  fillNormal(otherSeed.data(), 1000, 0.0f, 1.0f, 43, keyOf("w"));
  // Not merely unequal somewhere: independent streams almost never agree.
  int sameAsKey = 0, sameAsSeed = 0;
  for (int i = 0; i < 1000; ++i) {
    sameAsKey += base[i] == otherKey[i];
    sameAsSeed += base[i] == otherSeed[i];
  }
  EXPECT_LE(sameAsKey, 1);
  EXPECT_LE(sameAsSeed, 1);
}

// Tolerances. For n i.i.d. N(mu, sigma^2) samples the sample mean is
// N(mu, sigma^2/n): its standard error is sigma/sqrt(n) = 2e-5 here, and 5 of
// them bound a sound generator's deviation except with probability ~6e-7
// (the stream is fixed, so the test is deterministic anyway). The sample
// standard deviation has standard error ~ sigma/sqrt(2n), i.e. 0.07% of
// sigma at n = 1e6; a 1% bound is ~14 standard errors, loose enough for float
// rounding of the outputs yet far tighter than common mistakes (a missing
// factor 2 in Box-Muller's sqrt(-2 ln u) gives 29% too little). The share
// within one sigma, p = 0.682689, has standard error sqrt(p(1-p)/n) = 4.7e-4;
// 5 of them catch a uniform or otherwise misshapen law with the right moments.
TEST(RandomFill, NormalSamplesHaveTheRequestedLaw) {
  const int64_t n = 1000000;
  const double mean = 0.5, sigma = 0.02;
  std::vector<float> x(n);
  fillNormal(x.data(), n, float(mean), float(sigma), 7, keyOf("moments"));
  double sum = 0;
  for (float v : x)
    sum += v;
  double sampleMean = sum / n;
  double squares = 0;
  int64_t withinOneSigma = 0;
  for (float v : x) {
    squares += (v - sampleMean) * (v - sampleMean);
    withinOneSigma += std::abs(v - mean) < sigma;
  }
  double sampleStd = std::sqrt(squares / double(n - 1));
  EXPECT_NEAR(sampleMean, mean, 5 * sigma / std::sqrt(double(n)));
  EXPECT_NEAR(sampleStd / sigma, 1.0, 0.01);
  const double p = 0.682689492;
  EXPECT_NEAR(double(withinOneSigma) / n, p, 5 * std::sqrt(p * (1 - p) / n));
  EXPECT_TRUE(std::all_of(x.begin(), x.end(),
                          [](float v) { return std::isfinite(v); }));
}

// U[0,1) has mean 1/2 and standard deviation sqrt(1/12): the sample mean's
// standard error is sqrt(1/12)/sqrt(n) ~ 2.9e-4; allow 5 of them.
TEST(RandomFill, UniformSamplesCoverZeroToOne) {
  const int64_t n = 1000000;
  std::vector<float> u(n);
  fillUniform(u.data(), n, 7, keyOf("uniform"));
  double sum = 0;
  for (float v : u) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    sum += v;
  }
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12.0 / n));
  EXPECT_LT(*std::min_element(u.begin(), u.end()), 1e-4f);
  EXPECT_GT(*std::max_element(u.begin(), u.end()), 1 - 1e-4f);
}

TEST(RandomFill, ConstantFillsEveryElementAndNothingElse) {
  std::vector<float> x(10, -1.0f);
  fillConstant(x.data() + 1, 8, 0.25f);
  EXPECT_EQ(x.front(), -1.0f);
  EXPECT_EQ(x.back(), -1.0f);
  EXPECT_TRUE(std::all_of(x.begin() + 1, x.end() - 1,
                          [](float v) { return v == 0.25f; }));
  fillConstant(x.data(), 0, 9.0f); // nothing to do
  EXPECT_EQ(x.front(), -1.0f);
}

TEST(RandomFill, EmptyFillsTouchNothing) {
  float sentinel = 3.0f;
  fillNormal(&sentinel, 0, 0.0f, 1.0f, 1, 1);
  fillUniform(&sentinel, 0, 1, 1);
  EXPECT_EQ(sentinel, 3.0f);
}
} // namespace
