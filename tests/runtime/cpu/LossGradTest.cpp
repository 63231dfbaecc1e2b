//===- LossGradTest.cpp - backward of the losses; the router z-loss -------===//

#include "runtime/cpu/Grad.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <tuple>

namespace moert::cpu::testing {
namespace {

double crossEntropyOf(const std::vector<double> &logits,
                      const std::vector<int32_t> &labels, int64_t vocab,
                      int64_t ignoreIndex) {
  double sum = 0;
  int64_t counted = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] == ignoreIndex)
      continue;
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v)
      total += std::exp(logits[r * vocab + v]);
    sum += std::log(total) - logits[r * vocab + labels[r]];
    ++counted;
  }
  return counted ? sum / counted : 0.0;
}

TEST(CrossEntropyGradTest, MatchesFiniteDifferencesWithIgnoredRows) {
  int64_t vocab = 13, ignore = -100;
  std::vector<int32_t> labels = {4, -100, 0, 12, -100, 7, 4};
  int64_t rows = int64_t(labels.size());
  auto logits = randomVector(rows * vocab, 1, 2.0f);
  float dloss = 0.7f;
  std::vector<float> ours(logits.size(), -1.0f);
  ASSERT_TRUE(crossEntropyGrad(logits.data(), labels.data(), rows, vocab,
                               ignore, dloss, ours.data())
                  .ok());
  auto ref = numericGradient(logits, [&](const std::vector<double> &l) {
    return dloss * crossEntropyOf(l, labels, vocab, ignore);
  });
  EXPECT_LE(relativeError(ours, ref), kGradTolerance);
  for (int64_t v = 0; v < vocab; ++v)
    EXPECT_EQ(ours[1 * vocab + v], 0.0f);
}

TEST(CrossEntropyGradTest, AllIgnoredGivesZerosAndBadLabelsFail) {
  std::vector<int32_t> labels = {-1, -1};
  std::vector<float> logits = randomVector(6, 2), ours(6, -1.0f);
  ASSERT_TRUE(crossEntropyGrad(logits.data(), labels.data(), 2, 3, -1, 1.0f,
                               ours.data())
                  .ok());
  EXPECT_EQ(ours, std::vector<float>(6, 0.0f));
  labels = {0, 3};
  EXPECT_EQ(crossEntropyGrad(logits.data(), labels.data(), 2, 3, -1, 1.0f,
                             ours.data())
                .code(),
            absl::StatusCode::kInvalidArgument);
}

/// The layers' logits flattened into one vector, for finite differences.
struct Layers {
  std::vector<int64_t> tokens;
  int64_t experts;
  std::vector<float> flat;

  /// Each layer's rows of `all` (flat or a gradient of its shape).
  template <typename T> std::vector<T *> split(T *all) const {
    std::vector<T *> out;
    for (int64_t n : tokens) {
      out.push_back(all);
      all += n * experts;
    }
    return out;
  }
  std::vector<const float *> inputs() const { return split(flat.data()); }
  std::vector<float *> outputs(std::vector<float> &all) const {
    return split(all.data());
  }
};

Layers threeLayers(int64_t experts) {
  Layers layers{{7, 1, 12}, experts, {}};
  for (int64_t n : layers.tokens) {
    auto logits = decisiveLogits(n, experts, unsigned(n + experts));
    layers.flat.insert(layers.flat.end(), logits.begin(), logits.end());
  }
  return layers;
}

/// transformers' formula over all tokens, assignments from these logits
/// (decisive margins keep them fixed under the finite-difference steps).
double loadBalancingOf(const std::vector<double> &logits, int64_t experts,
                       int64_t k) {
  int64_t tokens = int64_t(logits.size()) / experts;
  std::vector<double> assigned(experts, 0.0), probability(experts, 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> probs(experts);
    double total = 0;
    for (int64_t e = 0; e < experts; ++e)
      total += probs[e] = std::exp(logits[t * experts + e]);
    std::vector<int32_t> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
    for (int64_t j = 0; j < k; ++j)
      assigned[order[j]] += 1;
    for (int64_t e = 0; e < experts; ++e)
      probability[e] += probs[e] / total;
  }
  double sum = 0;
  for (int64_t e = 0; e < experts; ++e)
    sum += assigned[e] / tokens * (probability[e] / tokens);
  return experts * sum;
}

TEST(LoadBalancingLossGradTest, MatchesFiniteDifferencesOverAllLayers) {
  for (const std::pair<int64_t, int64_t> &values : {std::pair<int64_t, int64_t>{3, 1}, {5, 2}}) {
    int64_t experts, k;
    std::tie(experts, k) = values;
    Layers layers = threeLayers(experts);
    float dloss = 0.3f;
    std::vector<float> ours(layers.flat.size(), -1.0f);
    ASSERT_TRUE(loadBalancingLossGrad(layers.inputs(), layers.tokens, experts,
                          k, dloss, layers.outputs(ours)).ok());
    auto ref = numericGradient(layers.flat, [&](const std::vector<double> &l) {
      return dloss * loadBalancingOf(l, experts, k);
    });
    EXPECT_LE(relativeError(ours, ref), kGradTolerance) << "E=" << experts;
  }
}

double zLossOf(const std::vector<double> &logits, int64_t experts) {
  int64_t tokens = int64_t(logits.size()) / experts;
  double sum = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    double total = 0;
    for (int64_t e = 0; e < experts; ++e)
      total += std::exp(logits[t * experts + e]);
    sum += std::log(total) * std::log(total);
  }
  return sum / tokens;
}

TEST(RouterZLossTest, ValueAndFiniteDifferences) {
  int64_t experts = 5;
  Layers layers = threeLayers(experts);
  float loss = -1;
  ASSERT_TRUE(routerZLoss(layers.inputs(), layers.tokens, experts, &loss).ok());
  double expected = zLossOf(toDouble(layers.flat), experts);
  EXPECT_NEAR(loss, expected, 1e-6 * expected);
  std::vector<float> ours(layers.flat.size(), -1.0f);
  ASSERT_TRUE(routerZLossGrad(layers.inputs(), layers.tokens, experts, 1.3f,
                  layers.outputs(ours)).ok());
  auto ref = numericGradient(layers.flat, [&](const std::vector<double> &l) {
    return 1.3 * zLossOf(l, experts);
  });
  EXPECT_LE(relativeError(ours, ref), kGradTolerance);
}

/// The rows of every layer whose label is not -100, flattened: what the
/// masked router losses must equal the unmasked ones on.
std::vector<double> labelledRows(const std::vector<double> &flat,
                                 const std::vector<int32_t> &labels,
                                 int64_t layers, int64_t experts) {
  std::vector<double> kept;
  int64_t tokens = int64_t(labels.size());
  for (int64_t layer = 0; layer < layers; ++layer)
    for (int64_t t = 0; t < tokens; ++t)
      if (labels[t] != -100)
        kept.insert(kept.end(), flat.begin() + (layer * tokens + t) * experts,
                    flat.begin() + (layer * tokens + t + 1) * experts);
  return kept;
}

// Padding (label -100) is left out of both router losses, as transformers'
// attention mask leaves it out: the masked losses equal the losses over the
// labelled rows alone, and their gradients (finite differences of that)
// are zero on the padding.
TEST(RouterLossesTest, LeaveOutTokensWithoutLabels) {
  int64_t experts = 5, k = 2, tokens = 12;
  Layers layers{{tokens, tokens}, experts, decisiveLogits(2 * tokens, experts, 7)};
  std::vector<int32_t> labels(tokens);
  for (int64_t t = 0; t < tokens; ++t)
    labels[t] = t % 3 == 2 || t >= 10 ? -100 : int32_t(t);
  TokenMask mask{labels.data(), -100};
  auto balance = [&](const std::vector<double> &l) {
    return loadBalancingOf(labelledRows(l, labels, 2, experts), experts, k);
  };
  auto z = [&](const std::vector<double> &l) {
    return zLossOf(labelledRows(l, labels, 2, experts), experts);
  };
  std::vector<double> flat = toDouble(layers.flat);
  float balanceLoss = -1, zLoss = -1;
  ASSERT_TRUE(loadBalancingLoss(layers.inputs(), layers.tokens, experts, k, &balanceLoss,
                    mask).ok());
  ASSERT_TRUE(routerZLoss(layers.inputs(), layers.tokens, experts, &zLoss, mask).ok());
  EXPECT_NEAR(balanceLoss, balance(flat), 1e-6 * balance(flat));
  EXPECT_NEAR(zLoss, z(flat), 1e-6 * z(flat));

  std::vector<float> dBalance(flat.size(), -1.0f), dZ(flat.size(), -1.0f);
  ASSERT_TRUE(loadBalancingLossGrad(layers.inputs(), layers.tokens, experts, k, 0.7f,
                        layers.outputs(dBalance), mask).ok());
  ASSERT_TRUE(routerZLossGrad(layers.inputs(), layers.tokens, experts, 0.7f,
                  layers.outputs(dZ), mask).ok());
  auto scaled = [](auto loss) {
    return [loss](const std::vector<double> &l) { return 0.7 * loss(l); };
  };
  EXPECT_LE(relativeError(dBalance, numericGradient(layers.flat, scaled(balance))),
            kGradTolerance);
  EXPECT_LE(relativeError(dZ, numericGradient(layers.flat, scaled(z))),
            kGradTolerance);
  for (int64_t layer = 0; layer < 2; ++layer)
    for (int64_t t = 10; t < tokens; ++t)
      for (int64_t e = 0; e < experts; ++e) {
        EXPECT_EQ(dBalance[(layer * tokens + t) * experts + e], 0.0f);
        EXPECT_EQ(dZ[(layer * tokens + t) * experts + e], 0.0f);
      }

  // No labelled token at all: zero losses and zero gradients.
  std::vector<int32_t> none(tokens, -100);
  TokenMask empty{none.data(), -100};
  ASSERT_TRUE(loadBalancingLoss(layers.inputs(), layers.tokens, experts, k, &balanceLoss,
                    empty).ok());
  ASSERT_TRUE(routerZLossGrad(layers.inputs(), layers.tokens, experts, 0.7f,
                  layers.outputs(dZ), empty).ok());
  EXPECT_EQ(balanceLoss, 0.0f);
  EXPECT_EQ(dZ, std::vector<float>(flat.size(), 0.0f));
}

TEST(LossGradTest, SameResultOnOneAndTwoThreads) {
  int64_t rows = 301, vocab = 517, experts = 6;
  auto logits = randomVector(rows * vocab, 3, 2.0f);
  std::vector<int32_t> labels(rows);
  for (int64_t r = 0; r < rows; ++r)
    labels[r] = r % 5 == 0 ? -100 : int32_t((r * 31) % vocab);
  Layers layers{{200, 301}, experts, decisiveLogits(501, experts, 4)};
  auto run = [&] {
    std::vector<float> ce(logits.size()), balance(layers.flat.size()),
        z(layers.flat.size());
    EXPECT_TRUE(crossEntropyGrad(logits.data(), labels.data(), rows, vocab,
                                 -100, 1.0f, ce.data())
                    .ok());
    EXPECT_TRUE(loadBalancingLossGrad(layers.inputs(), layers.tokens, experts,
                          2, 1.0f, layers.outputs(balance)).ok());
    EXPECT_TRUE(routerZLossGrad(layers.inputs(), layers.tokens, experts, 1.0f,
                    layers.outputs(z)).ok());
    float zLoss;
    EXPECT_TRUE(routerZLoss(layers.inputs(), layers.tokens, experts, &zLoss).ok());
    return std::make_tuple(ce, balance, z, zLoss);
  };
  decltype(run()) one, two;
  withThreads(1, [&] { one = run(); });
  withThreads(2, [&] { two = run(); });
  EXPECT_TRUE(one == two);
}

} // namespace
} // namespace moert::cpu::testing
