//===- LossTest.cpp - cross-entropy and load-balancing loss ---------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace moert::cpu::testing {
namespace {

TEST(CrossEntropyTest, MeanOverLabelsNotIgnored) {
  int64_t rows = 5, vocab = 7;
  auto logits = randomVector(rows * vocab, 1, 3.0f);
  std::vector<int32_t> labels = {1, -100, 6, 0, -100};
  float loss;
  ASSERT_TRUE(
      crossEntropy(logits.data(), labels.data(), rows, vocab, -100, &loss).ok());
  double expected = 0;
  for (int64_t r : {0, 2, 3}) {
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v)
      total += std::exp(double(logits[r * vocab + v]));
    expected += std::log(total) - logits[r * vocab + labels[r]];
  }
  EXPECT_NEAR(loss, expected / 3, 1e-5 * expected / 3);

  std::vector<int32_t> ignored(rows, -100);
  ASSERT_TRUE(
      crossEntropy(logits.data(), ignored.data(), rows, vocab, -100, &loss).ok());
  EXPECT_EQ(loss, 0.0f);
}

TEST(CrossEntropyTest, RejectsLabelsOutsideTheVocabulary) {
  std::vector<float> logits(2 * 3, 0.0f);
  std::vector<int32_t> labels = {0, 3};
  float loss;
  absl::Status status =
      crossEntropy(logits.data(), labels.data(), 2, 3, -100, &loss);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "label 3 at position 1 is outside the vocabulary [0, 3)");
}

/// transformers' load_balancing_loss_func on the concatenated logits:
/// E * sum_e (top-k assignments to e / tokens) * mean probability of e.
double naiveLoadBalancing(const std::vector<std::vector<float>> &layers,
                          int64_t experts, int64_t k) {
  std::vector<double> assigned(experts, 0.0), probability(experts, 0.0);
  int64_t tokens = 0;
  for (const std::vector<float> &logits : layers)
    for (size_t t = 0; t * experts < logits.size(); ++t, ++tokens) {
      std::vector<double> probs(experts);
      double total = 0;
      for (int64_t e = 0; e < experts; ++e)
        total += probs[e] = std::exp(double(logits[t * experts + e]));
      for (double &p : probs)
        p /= total;
      std::vector<int32_t> order(experts);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
      for (int64_t j = 0; j < k; ++j)
        assigned[order[j]] += 1;
      for (int64_t e = 0; e < experts; ++e)
        probability[e] += probs[e];
    }
  double sum = 0;
  for (int64_t e = 0; e < experts; ++e)
    sum += assigned[e] / tokens * (probability[e] / tokens);
  return experts * sum;
}

TEST(LoadBalancingLossTest, MatchesTransformersOverAllLayers) {
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{3, 1}, {4, 2}}) {
    std::vector<std::vector<float>> layers = {
        randomVector(7 * experts, 1, 2.0f), randomVector(1 * experts, 2, 2.0f),
        randomVector(12 * experts, 3, 2.0f)};
    float loss;
    ASSERT_TRUE(loadBalancingLoss({layers[0].data(), layers[1].data(), layers[2].data()},
                      {7, 1, 12}, experts, k, &loss).ok());
    double expected = naiveLoadBalancing(layers, experts, k);
    EXPECT_NEAR(loss, expected, 1e-5 * expected) << "E=" << experts;
  }
}

TEST(LoadBalancingLossTest, UniformRoutingGivesK) {
  // Every P_e = 1/E and ties send all top-k slots to experts 0..k-1:
  // E * sum_{e<k} 1 * 1/E = k.
  std::vector<float> uniform(6 * 4, 0.0f);
  float loss;
  ASSERT_TRUE(loadBalancingLoss({uniform.data(), uniform.data()}, {6, 6}, 4, 2, &loss).ok());
  EXPECT_NEAR(loss, 2.0f, 1e-6);
}

} // namespace
} // namespace moert::cpu::testing
