//===- SamplingTest.cpp - sampled tokens against exact probabilities ------===//
//
// The logits are log-probabilities of a fixed distribution scaled by the
// temperature, so every warper's exact result is known in closed form: the
// top-k tokens or the nucleus, renormalised. Draws are counted and held to a
// chi-square bound; tokens outside the kept set must never appear.
//
//===----------------------------------------------------------------------===//

#include "runtime/generate/Sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace moert {
namespace {

// A fixed distribution over 8 ids, deliberately not in probability order.
const std::vector<double> kProbabilities = {0.05, 0.20, 0.02, 0.30,
                                            0.08, 0.15, 0.12, 0.08};

std::vector<float> logitsOf(double temperature) {
  std::vector<float> logits;
  for (double p : kProbabilities)
    logits.push_back(float(std::log(p) * temperature));
  return logits;
}

/// The distribution renormalised over `kept` ids.
std::map<int32_t, double> renormalised(const std::vector<int32_t> &kept) {
  double mass = 0;
  for (int32_t id : kept)
    mass += kProbabilities[id];
  std::map<int32_t, double> exact;
  for (int32_t id : kept)
    exact[id] = kProbabilities[id] / mass;
  return exact;
}

/// The chi-square value with `dof` degrees of freedom exceeded with
/// probability about 1e-6 (Wilson-Hilferty; z = 4.753).
double chiSquareBound(int dof) {
  double a = 2.0 / (9.0 * dof);
  return dof * std::pow(1 - a + 4.753 * std::sqrt(a), 3);
}

/// Draws `draws` tokens (steps 0..draws-1 of sequence 3) and checks their
/// counts against `exact`.
void expectDrawsFollow(const std::vector<float> &logits,
                       const SamplingOptions &options,
                       const std::map<int32_t, double> &exact) {
  const int64_t draws = 40000;
  std::map<int32_t, int64_t> counts;
  for (int64_t step = 0; step < draws; ++step)
    ++counts[sampleToken(logits.data(), int64_t(logits.size()), options,
                         /*sequence=*/3, step)];
  double chiSquare = 0;
  for (const auto &[id, count] : counts)
    ASSERT_TRUE(exact.count(id)) << "token " << id << " is outside the kept set";
  for (const auto &[id, probability] : exact) {
    double expected = probability * draws;
    double observed = double(counts[id]);
    chiSquare += (observed - expected) * (observed - expected) / expected;
  }
  EXPECT_LT(chiSquare, chiSquareBound(int(exact.size()) - 1));
}

TEST(Sampling, TemperatureAloneFollowsTheSoftmax) {
  for (double temperature : {0.5, 1.0, 2.0}) {
    SamplingOptions options{temperature, 0, 1.0, /*seed=*/11};
    expectDrawsFollow(logitsOf(temperature), options,
                      renormalised({0, 1, 2, 3, 4, 5, 6, 7}));
  }
}

TEST(Sampling, TopKKeepsTheKMostProbable) {
  SamplingOptions options{0.7, 3, 1.0, /*seed=*/12};
  expectDrawsFollow(logitsOf(0.7), options, renormalised({3, 1, 5}));
}

TEST(Sampling, TopPKeepsTheSmallestNucleus) {
  // Sorted: 0.30 (3), 0.20 (1), 0.15 (5), 0.12 (6): the mass reaches 0.6 at
  // the third token (0.65), so top_p = 0.6 keeps {3, 1, 5}; 0.66 adds 6.
  SamplingOptions options{1.3, 0, 0.6, /*seed=*/13};
  expectDrawsFollow(logitsOf(1.3), options, renormalised({3, 1, 5}));
  options.topP = 0.66;
  expectDrawsFollow(logitsOf(1.3), options, renormalised({3, 1, 5, 6}));
}

TEST(Sampling, TopKThenTopP) {
  // top-k 4 renormalises {3, 1, 5, 6} (mass 0.77); the nucleus of 0.6 of
  // that needs 0.30 + 0.20 = 0.65 of 0.77 = 0.844 > 0.6, so keeps {3, 1}.
  SamplingOptions options{1.0, 4, 0.6, /*seed=*/14};
  expectDrawsFollow(logitsOf(1.0), options, renormalised({3, 1}));
}

TEST(Sampling, DistributionIsExact) {
  SamplingOptions options{2.0, 5, 0.9, 0};
  std::vector<float> logits = logitsOf(2.0);
  auto tokens = samplingDistribution(logits.data(), 8, options);
  // top-5: {3, 1, 5, 6, 4 or 7}: 4 and 7 tie at 0.08, the lower id wins.
  // Mass 0.85; the nucleus of 0.9 reaches it at 0.77 / 0.85 = 0.906 > 0.9.
  std::map<int32_t, double> exact = renormalised({3, 1, 5, 6});
  ASSERT_EQ(tokens.size(), exact.size());
  for (const auto &[id, probability] : tokens)
    EXPECT_NEAR(probability, exact.at(id), 1e-6) << "token " << id;
  EXPECT_EQ(tokens.front().first, 3);

  options.topP = 1.0;
  tokens = samplingDistribution(logits.data(), 8, options);
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_EQ(tokens.back().first, 4);
  EXPECT_NEAR(tokens.back().second, 0.08 / 0.85, 1e-6);
}

TEST(Sampling, ChiSquareDetectsAWrongDistribution) {
  // The check itself can fail: draws from the full softmax held against
  // a distribution that moves 2 points of mass between two tokens.
  SamplingOptions options{1.0, 0, 1.0, /*seed=*/15};
  std::vector<float> logits = logitsOf(1.0);
  const int64_t draws = 40000;
  std::map<int32_t, double> wrong = renormalised({0, 1, 2, 3, 4, 5, 6, 7});
  wrong[3] += 0.02; // a 2-point shift between two tokens
  wrong[1] -= 0.02;
  std::map<int32_t, int64_t> counts;
  for (int64_t step = 0; step < draws; ++step)
    ++counts[sampleToken(logits.data(), 8, options, 0, step)];
  double chiSquare = 0;
  for (const auto &[id, probability] : wrong) {
    double expected = probability * draws;
    chiSquare += (counts[id] - expected) * (counts[id] - expected) / expected;
  }
  EXPECT_GT(chiSquare, chiSquareBound(7));
}

TEST(Sampling, GreedyIsArgmaxWithTiesToTheLowerId) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  for (int64_t step = 0; step < 10; ++step)
    EXPECT_EQ(sampleToken(logits.data(), 4, SamplingOptions{}, 0, step), 1);
}

TEST(Sampling, DrawsDependOnlyOnSeedSequenceAndStep) {
  std::vector<float> logits = logitsOf(1.0);
  SamplingOptions options{1.0, 0, 1.0, /*seed=*/21};
  std::vector<int32_t> first, again, otherSequence;
  for (int64_t step = 0; step < 64; ++step) {
    first.push_back(sampleToken(logits.data(), 8, options, 2, step));
    otherSequence.push_back(sampleToken(logits.data(), 8, options, 5, step));
  }
  for (int64_t step = 63; step >= 0; --step) // any order of calls
    again.insert(again.begin(), sampleToken(logits.data(), 8, options, 2, step));
  EXPECT_EQ(first, again);
  EXPECT_NE(first, otherSequence);
}

} // namespace
} // namespace moert
