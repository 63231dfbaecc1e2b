//===- MoeTest.cpp - routing, dispatch, experts and combine ---------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace moert::cpu::testing {
namespace {

struct Routing {
  std::vector<float> weights;
  std::vector<int32_t> indices;
};

/// Double softmax, then the k most probable experts, ties to the lower index.
Routing naiveTopK(const std::vector<float> &logits, int64_t tokens,
                  int64_t experts, int64_t k, bool normalize) {
  Routing routing;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> probs(experts);
    double total = 0;
    for (int64_t e = 0; e < experts; ++e)
      total += probs[e] = std::exp(double(logits[t * experts + e]));
    std::vector<int32_t> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
    double chosen = 0;
    for (int64_t j = 0; j < k; ++j)
      chosen += probs[order[j]] / total;
    for (int64_t j = 0; j < k; ++j) {
      routing.indices.push_back(order[j]);
      double p = probs[order[j]] / total;
      routing.weights.push_back(float(normalize ? p / chosen : p));
    }
  }
  return routing;
}

Routing route(const std::vector<float> &logits, int64_t tokens, int64_t experts,
              int64_t k, bool normalize) {
  Routing routing{std::vector<float>(tokens * k),
                  std::vector<int32_t>(tokens * k)};
  routerTopK(logits.data(), tokens, experts, k, normalize,
             routing.weights.data(), routing.indices.data());
  return routing;
}

TEST(RouterTopKTest, MatchesReference) {
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{3, 1}, {4, 2}, {8, 3}})
    for (bool normalize : {false, true}) {
      int64_t tokens = 17;
      auto logits = randomVector(tokens * experts, unsigned(experts + k), 2.0f);
      Routing ours = route(logits, tokens, experts, k, normalize);
      Routing ref = naiveTopK(logits, tokens, experts, k, normalize);
      EXPECT_EQ(ours.indices, ref.indices) << "E=" << experts << " k=" << k;
      for (size_t i = 0; i < ref.weights.size(); ++i)
        EXPECT_NEAR(ours.weights[i], ref.weights[i], 1e-6);
    }
}

TEST(RouterTopKTest, TiesGoToTheLowerExpert) {
  std::vector<float> logits = {1, 1, 0, 1, /**/ 0, 3, 3, 3};
  Routing routing = route(logits, 2, 4, 2, true);
  EXPECT_EQ(routing.indices, (std::vector<int32_t>{0, 1, 1, 2}));
  for (float weight : routing.weights)
    EXPECT_FLOAT_EQ(weight, 0.5f);
  std::vector<float> flat = {0, 0, 0};
  EXPECT_EQ(route(flat, 1, 3, 1, false).indices, std::vector<int32_t>{0});
}

struct Dispatched {
  std::vector<float> grouped;
  std::vector<int64_t> counts;
  std::vector<int32_t> slots;
};

Dispatched runDispatch(const std::vector<float> &x,
                       const std::vector<int32_t> &indices, int64_t tokens,
                       int64_t k, int64_t experts, int64_t d) {
  Dispatched out{std::vector<float>(tokens * k * d),
                 std::vector<int64_t>(experts), std::vector<int32_t>(tokens * k)};
  EXPECT_TRUE(dispatch(x.data(), indices.data(), tokens, k, experts, d,
                       out.grouped.data(), out.counts.data(), out.slots.data())
                  .ok());
  return out;
}

std::vector<float> runCombine(const std::vector<float> &y,
                              const std::vector<float> &weights,
                              const std::vector<int32_t> &slots, int64_t tokens,
                              int64_t k, int64_t d) {
  std::vector<float> out(tokens * d);
  EXPECT_TRUE(combine(y.data(), weights.data(), slots.data(), tokens, k, d,
                      out.data())
                  .ok());
  return out;
}

/// Routing of `tokens` tokens over E experts that never picks expert
/// `unused` (each token's k experts distinct).
std::vector<int32_t> routingWithout(int64_t unused, int64_t tokens,
                                    int64_t experts, int64_t k) {
  std::vector<int32_t> indices;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0, e = t % experts; j < k; e = (e + 1) % experts) {
      if (e == unused)
        continue;
      indices.push_back(int32_t(e));
      ++j;
    }
  return indices;
}

TEST(DispatchTest, StableGroupingByExpert) {
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{3, 1}, {4, 2}}) {
    int64_t tokens = 11, d = 6;
    std::vector<int32_t> indices = routingWithout(1, tokens, experts, k);
    auto x = randomVector(tokens * d, 1);
    Dispatched out = runDispatch(x, indices, tokens, k, experts, d);

    EXPECT_EQ(std::accumulate(out.counts.begin(), out.counts.end(), int64_t(0)),
              tokens * k);
    EXPECT_EQ(out.counts[1], 0);
    for (int64_t e = 0; e < experts; ++e)
      EXPECT_EQ(out.counts[e], std::count(indices.begin(), indices.end(), e));
    std::vector<int32_t> sorted = out.slots;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t s = 0; s < tokens * k; ++s)
      EXPECT_EQ(sorted[s], s);
    int64_t row = 0;
    for (int64_t e = 0; e < experts; ++e)
      for (int64_t r = 0; r < out.counts[e]; ++r, ++row) {
        EXPECT_EQ(indices[out.slots[row]], e);
        if (r > 0) {
          EXPECT_LT(out.slots[row - 1], out.slots[row]);
        }
        int64_t token = out.slots[row] / k;
        EXPECT_TRUE(std::equal(x.begin() + token * d, x.begin() + (token + 1) * d,
                               out.grouped.begin() + row * d));
      }
  }
}

TEST(DispatchTest, RejectsExpertsOutOfRange) {
  int64_t tokens = 3, k = 2, experts = 4, d = 2;
  std::vector<float> x(tokens * d), grouped(tokens * k * d);
  std::vector<int64_t> counts(experts);
  std::vector<int32_t> slots(tokens * k);
  for (int32_t bad : {-1, 4}) {
    std::vector<int32_t> indices = {0, 1, 2, 3, bad, 0};
    absl::Status status = dispatch(x.data(), indices.data(), tokens, k, experts,
                                   d, grouped.data(), counts.data(), slots.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("slot 4"), absl::string_view::npos)
        << status.message();
  }
}

TEST(CombineTest, IdentityExpertsGiveXTimesTheWeightSum) {
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{3, 1}, {4, 2}}) {
    int64_t tokens = 9, d = 5;
    auto x = randomVector(tokens * d, 2);
    // Unnormalised weights, so the sum is not 1.
    Routing routing = route(randomVector(tokens * experts, 3), tokens, experts,
                            k, false);
    Dispatched dispatched = runDispatch(x, routing.indices, tokens, k, experts, d);
    std::vector<float> out = runCombine(dispatched.grouped, routing.weights,
                                        dispatched.slots, tokens, k, d);
    for (int64_t t = 0; t < tokens; ++t) {
      double weightSum = 0;
      for (int64_t j = 0; j < k; ++j)
        weightSum += routing.weights[t * k + j];
      for (int64_t i = 0; i < d; ++i)
        EXPECT_NEAR(out[t * d + i], x[t * d + i] * weightSum,
                    1e-6 * std::abs(x[t * d + i]));
    }
  }
}

TEST(CombineTest, WeighsTheRowOfEachSlot) {
  int64_t tokens = 4, k = 2, d = 3;
  std::vector<int32_t> slots = {5, 0, 3, 1, 7, 2, 6, 4}; // row -> slot
  auto y = randomVector(tokens * k * d, 4);
  auto weights = randomVector(tokens * k, 5);
  std::vector<float> out = runCombine(y, weights, slots, tokens, k, d);
  std::vector<double> ref(tokens * d, 0.0);
  for (int64_t row = 0; row < tokens * k; ++row)
    for (int64_t i = 0; i < d; ++i)
      ref[slots[row] / k * d + i] += double(weights[slots[row]]) * y[row * d + i];
  EXPECT_LE(relativeError(out, ref), 1e-6);
}

TEST(CombineTest, RejectsSlotsThatAreNotAPermutation) {
  std::vector<float> y(4), weights(4), out(4);
  for (std::vector<int32_t> slots :
       {std::vector<int32_t>{0, 1, 1, 3}, std::vector<int32_t>{0, 1, 2, 4}}) {
    EXPECT_EQ(combine(y.data(), weights.data(), slots.data(), 2, 2, 1, out.data())
                  .code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(DispatchCombineTest, SameResultOnOneAndTwoThreads) {
  int64_t tokens = 37, experts = 4, k = 2, d = 19;
  auto x = randomVector(tokens * d, 6);
  Routing routing = route(randomVector(tokens * experts, 7), tokens, experts, k,
                          true);
  auto y = randomVector(tokens * k * d, 8);
  Dispatched one, two;
  std::vector<float> combinedOne, combinedTwo;
  withThreads(1, [&] {
    one = runDispatch(x, routing.indices, tokens, k, experts, d);
    combinedOne = runCombine(y, routing.weights, one.slots, tokens, k, d);
  });
  withThreads(2, [&] {
    two = runDispatch(x, routing.indices, tokens, k, experts, d);
    combinedTwo = runCombine(y, routing.weights, two.slots, tokens, k, d);
  });
  EXPECT_EQ(one.grouped, two.grouped);
  EXPECT_EQ(one.counts, two.counts);
  EXPECT_EQ(one.slots, two.slots);
  EXPECT_EQ(combinedOne, combinedTwo);
}

/// (silu(x w1^T) * (x w3^T)) w2^T for each expert's rows, in double.
std::vector<double> naiveExperts(const std::vector<float> &x,
                                 const std::vector<int64_t> &counts, int64_t d,
                                 int64_t f, const std::vector<float> &w1,
                                 const std::vector<float> &w3,
                                 const std::vector<float> &w2) {
  int64_t rows = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  std::vector<double> out(rows * d, 0.0);
  int64_t row = 0;
  for (size_t e = 0; e < counts.size(); ++e)
    for (int64_t r = 0; r < counts[e]; ++r, ++row) {
      std::vector<double> hidden(f);
      for (int64_t j = 0; j < f; ++j) {
        double gate = 0, up = 0;
        for (int64_t t = 0; t < d; ++t) {
          gate += double(x[row * d + t]) * w1[(e * f + j) * d + t];
          up += double(x[row * d + t]) * w3[(e * f + j) * d + t];
        }
        hidden[j] = gate / (1 + std::exp(-gate)) * up;
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < f; ++j)
          out[row * d + i] += hidden[j] * w2[(e * d + i) * f + j];
    }
  return out;
}

struct ExpertWeights {
  std::vector<float> w1, w3, w2;
};

ExpertWeights randomExperts(int64_t experts, int64_t d, int64_t f) {
  return {randomVector(experts * f * d, 10, 0.3f),
          randomVector(experts * f * d, 11, 0.3f),
          randomVector(experts * d * f, 12, 0.3f)};
}

TEST(ExpertMlpTest, F32SkipsExpertsWithoutRows) {
  int64_t d = 10, f = 14;
  for (std::vector<int64_t> counts :
       {std::vector<int64_t>{4, 0, 3}, std::vector<int64_t>{0, 5, 0, 1}}) {
    int64_t experts = int64_t(counts.size());
    int64_t rows = std::accumulate(counts.begin(), counts.end(), int64_t(0));
    auto x = randomVector(rows * d, 13);
    ExpertWeights w = randomExperts(experts, d, f);
    std::vector<float> out(rows * d);
    ASSERT_TRUE(expertMlp(x.data(), counts.data(), experts, d, f,
                          {w.w1.data(), DType::kF32}, {w.w3.data(), DType::kF32},
                          {w.w2.data(), DType::kF32}, out.data())
                    .ok());
    EXPECT_LE(relativeError(out, naiveExperts(x, counts, d, f, w.w1, w.w3, w.w2)),
              1e-5);
  }
}

TEST(ExpertMlpTest, Bf16Weights) {
  int64_t experts = 4, d = 13, f = 21;
  std::vector<int64_t> counts = {3, 0, 6, 1};
  int64_t rows = 10;
  auto x = randomVector(rows * d, 14);
  ExpertWeights w = randomExperts(experts, d, f);
  std::vector<uint16_t> w1 = toBf16(w.w1), w3 = toBf16(w.w3), w2 = toBf16(w.w2);
  std::vector<float> out(rows * d);
  ASSERT_TRUE(expertMlp(x.data(), counts.data(), experts, d, f,
                        {w1.data(), DType::kBF16}, {w3.data(), DType::kBF16},
                        {w2.data(), DType::kBF16}, out.data())
                  .ok());
  auto ref = naiveExperts(roundedToBf16(x), counts, d, f, roundedToBf16(w.w1),
                          roundedToBf16(w.w3), roundedToBf16(w.w2));
  EXPECT_LE(relativeError(out, ref), 1e-2);
}

TEST(ExpertMlpTest, SameResultOnOneAndTwoThreads) {
  // Even experts run side by side on two threads (one-thread GEMMs), uneven
  // ones share every GEMM; one thread runs them one after the other.
  int64_t d = 64, f = 96;
  for (std::vector<int64_t> counts :
       {std::vector<int64_t>{61, 70, 0, 66, 58, 73, 64},
        std::vector<int64_t>{300, 4, 2}, std::vector<int64_t>{1, 1}}) {
    int64_t experts = int64_t(counts.size());
    int64_t rows = std::accumulate(counts.begin(), counts.end(), int64_t(0));
    auto x = randomVector(rows * d, 17);
    ExpertWeights w = randomExperts(experts, d, f);
    std::vector<uint16_t> b1 = toBf16(w.w1), b3 = toBf16(w.w3),
                          b2 = toBf16(w.w2);
    std::vector<uint16_t> h1(w.w1.size()), h3(w.w3.size()), h2(w.w2.size());
    for (size_t i = 0; i < h1.size(); ++i) {
      h1[i] = floatToF16(w.w1[i]);
      h3[i] = floatToF16(w.w3[i]);
      h2[i] = floatToF16(w.w2[i]);
    }
    auto run = [&](Weight w1, Weight w3, Weight w2) {
      std::vector<float> out(rows * d, -1.0f);
      EXPECT_TRUE(expertMlp(x.data(), counts.data(), experts, d, f, w1, w3,
                            w2, out.data())
                      .ok());
      return out;
    };
    auto all = [&] {
      return std::make_tuple(
          run({w.w1.data(), DType::kF32}, {w.w3.data(), DType::kF32},
              {w.w2.data(), DType::kF32}),
          run({b1.data(), DType::kBF16}, {b3.data(), DType::kBF16},
              {b2.data(), DType::kBF16}),
          run({h1.data(), DType::kF16}, {h3.data(), DType::kF16},
              {h2.data(), DType::kF16}));
    };
    decltype(all()) one, two;
    withThreads(1, [&] { one = all(); });
    withThreads(2, [&] { two = all(); });
    EXPECT_TRUE(std::get<0>(one) == std::get<0>(two)) << "f32";
    EXPECT_TRUE(std::get<1>(one) == std::get<1>(two)) << "bf16";
    EXPECT_TRUE(std::get<2>(one) == std::get<2>(two)) << "f16";
    EXPECT_LE(relativeError(std::get<0>(two),
                            naiveExperts(x, counts, d, f, w.w1, w.w3, w.w2)),
              1e-5);
  }
}

TEST(MoeLayerTest, RouteDispatchExpertsCombineMatchesPerTokenMath) {
  int64_t tokens = 9, experts = 4, k = 2, d = 10, f = 14;
  auto x = randomVector(tokens * d, 15);
  auto logits = randomVector(tokens * experts, 16, 2.0f);
  ExpertWeights w = randomExperts(experts, d, f);
  Routing routing = route(logits, tokens, experts, k, true);
  Dispatched dispatched = runDispatch(x, routing.indices, tokens, k, experts, d);
  std::vector<float> y(tokens * k * d);
  ASSERT_TRUE(expertMlp(dispatched.grouped.data(), dispatched.counts.data(),
                        experts, d, f, {w.w1.data(), DType::kF32},
                        {w.w3.data(), DType::kF32}, {w.w2.data(), DType::kF32},
                        y.data())
                  .ok());
  std::vector<float> out =
      runCombine(y, routing.weights, dispatched.slots, tokens, k, d);

  Routing ref = naiveTopK(logits, tokens, experts, k, true);
  std::vector<double> expected(tokens * d, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = ref.indices[t * k + j];
      // One token through expert e alone: counts select that expert.
      std::vector<int64_t> counts(experts, 0);
      counts[e] = 1;
      std::vector<float> row(x.begin() + t * d, x.begin() + (t + 1) * d);
      std::vector<double> expertOut = naiveExperts(row, counts, d, f, w.w1, w.w3, w.w2);
      for (int64_t i = 0; i < d; ++i)
        expected[t * d + i] += ref.weights[t * k + j] * expertOut[i];
    }
  EXPECT_LE(relativeError(out, expected), 1e-5);
}

} // namespace
} // namespace moert::cpu::testing
