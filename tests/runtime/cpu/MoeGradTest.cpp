//===- MoeGradTest.cpp - backward of routing, dispatch, experts, combine --===//

#include "runtime/cpu/Grad.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <tuple>

namespace moert::cpu::testing {
namespace {

/// routerTopK's weights for fixed indices, in double.
std::vector<double> routerWeightsOf(const std::vector<double> &logits,
                                    const std::vector<int32_t> &indices,
                                    int64_t tokens, int64_t experts,
                                    int64_t k, bool normalize) {
  std::vector<double> weights(tokens * k);
  for (int64_t t = 0; t < tokens; ++t) {
    double total = 0, chosen = 0;
    for (int64_t e = 0; e < experts; ++e)
      total += std::exp(logits[t * experts + e]);
    for (int64_t j = 0; j < k; ++j)
      chosen += std::exp(logits[t * experts + indices[t * k + j]]) / total;
    for (int64_t j = 0; j < k; ++j) {
      double p = std::exp(logits[t * experts + indices[t * k + j]]) / total;
      weights[t * k + j] = normalize ? p / chosen : p;
    }
  }
  return weights;
}

TEST(RouterGradTest, MatchesFiniteDifferencesWithIndicesHeldFixed) {
  int64_t tokens = 9;
  for (const auto &values :
       {std::pair<int64_t, int64_t>{5, 1}, {5, 2}, {3, 3}}) {
    int64_t experts, k;
    std::tie(experts, k) = values;
    for (bool normalize : {false, true})
      for (bool extra : {false, true}) {
        auto logits = decisiveLogits(tokens, experts, unsigned(experts + k));
        std::vector<float> weights(tokens * k);
        std::vector<int32_t> indices(tokens * k);
        routerTopK(logits.data(), tokens, experts, k, normalize,
                   weights.data(), indices.data());
        auto r = randomVector(tokens * k, 1);
        auto direct = randomVector(tokens * experts, 2);
        std::vector<float> ours(tokens * experts, -1.0f);
        routerGrad(logits.data(), indices.data(), r.data(),
                   extra ? direct.data() : nullptr, tokens, experts, k,
                   normalize, ours.data());
        auto ref = numericGradient(logits, [&](const std::vector<double> &l) {
          double loss = weightedSum(
              routerWeightsOf(l, indices, tokens, experts, k, normalize), r);
          return extra ? loss + weightedSum(l, direct) : loss;
        });
        std::string name = "E=" + std::to_string(experts) +
                           " k=" + std::to_string(k) +
                           (normalize ? " normalized" : "") +
                           (extra ? " extra" : "");
        if (normalize && k == 1 && !extra) { // the one weight is always 1
          for (float value : ours)
            ASSERT_EQ(value, 0.0f) << name;
          continue;
        }
        EXPECT_LE(relativeError(ours, ref), kGradTolerance) << name;
      }
  }
}

struct Dispatched {
  std::vector<float> grouped;
  std::vector<int64_t> counts;
  std::vector<int32_t> slots;
};

Dispatched dispatched(const std::vector<float> &x,
                      const std::vector<int32_t> &indices, int64_t tokens,
                      int64_t k, int64_t experts, int64_t d) {
  Dispatched out{std::vector<float>(tokens * k * d),
                 std::vector<int64_t>(experts),
                 std::vector<int32_t>(tokens * k)};
  EXPECT_TRUE(dispatch(x.data(), indices.data(), tokens, k, experts, d,
                       out.grouped.data(), out.counts.data(), out.slots.data())
                  .ok());
  return out;
}

// Expert 2 of 4 gets no rows.
const std::vector<int32_t> kIndices = {1, 0, 3, 1, 0, 3, 1, 0, 3, 0};
constexpr int64_t kTokens = 5, kK = 2, kExperts = 4;

TEST(DispatchGradTest, MatchesFiniteDifferences) {
  int64_t d = 7;
  auto x = randomVector(kTokens * d, 3);
  Dispatched grouped = dispatched(x, kIndices, kTokens, kK, kExperts, d);
  auto r = randomVector(kTokens * kK * d, 4);
  std::vector<float> ours(kTokens * d, -1.0f);
  ASSERT_TRUE(dispatchGrad(r.data(), grouped.slots.data(), kTokens, kK, d,
                           ours.data())
                  .ok());
  auto ref = numericGradient(x, [&](const std::vector<double> &xs) {
    double loss = 0;
    for (int64_t row = 0; row < kTokens * kK; ++row)
      for (int64_t i = 0; i < d; ++i)
        loss += xs[(grouped.slots[row] / kK) * d + i] * r[row * d + i];
    return loss;
  });
  EXPECT_LE(relativeError(ours, ref), kGradTolerance);
}

TEST(CombineGradTest, MatchesFiniteDifferences) {
  int64_t d = 6;
  auto x = randomVector(kTokens * d, 5);
  Dispatched grouped = dispatched(x, kIndices, kTokens, kK, kExperts, d);
  auto y = randomVector(kTokens * kK * d, 6);
  auto weights = randomVector(kTokens * kK, 7);
  auto r = randomVector(kTokens * d, 8);
  std::vector<float> dy(y.size(), -1.0f), dweights(weights.size(), -1.0f);
  ASSERT_TRUE(combineGrad(y.data(), weights.data(), grouped.slots.data(),
                          kTokens, kK, d, r.data(), dy.data(), dweights.data())
                  .ok());
  std::vector<int64_t> rowOfSlot(kTokens * kK);
  for (int64_t row = 0; row < kTokens * kK; ++row)
    rowOfSlot[grouped.slots[row]] = row;
  auto loss = [&](const std::vector<double> &ys, const std::vector<double> &ws) {
    double sum = 0;
    for (int64_t t = 0; t < kTokens; ++t)
      for (int64_t j = 0; j < kK; ++j)
        for (int64_t i = 0; i < d; ++i)
          sum += ws[t * kK + j] * ys[rowOfSlot[t * kK + j] * d + i] *
                 r[t * d + i];
    return sum;
  };
  auto dyRef = numericGradient(
      y, [&](const std::vector<double> &ys) { return loss(ys, toDouble(weights)); });
  auto dwRef = numericGradient(
      weights, [&](const std::vector<double> &ws) { return loss(toDouble(y), ws); });
  EXPECT_LE(relativeError(dy, dyRef), kGradTolerance);
  EXPECT_LE(relativeError(dweights, dwRef), kGradTolerance);
}

TEST(DispatchCombineGradTest, RejectSlotsThatAreNotAPermutation) {
  std::vector<int32_t> slots = {0, 2, 2, 1};
  std::vector<float> buffer(16), out(16);
  EXPECT_FALSE(
      dispatchGrad(buffer.data(), slots.data(), 2, 2, 4, out.data()).ok());
  EXPECT_FALSE(combineGrad(buffer.data(), buffer.data(), slots.data(), 2, 2, 4,
                           buffer.data(), out.data(), out.data())
                   .ok());
}

struct ExpertShape {
  int64_t d, f;
  std::vector<int64_t> counts;
  int64_t rows() const {
    return std::accumulate(counts.begin(), counts.end(), int64_t(0));
  }
  int64_t experts() const { return int64_t(counts.size()); }
};

std::vector<double> expertMlpOf(const std::vector<double> &x,
                                const std::vector<double> &w1,
                                const std::vector<double> &w3,
                                const std::vector<double> &w2,
                                const ExpertShape &s) {
  int64_t d = s.d, f = s.f;
  std::vector<double> y(x.size(), 0.0), hidden(f);
  int64_t row = 0;
  for (int64_t e = 0; e < s.experts(); ++e)
    for (int64_t n = 0; n < s.counts[e]; ++n, ++row) {
      for (int64_t o = 0; o < f; ++o) {
        double gate = 0, up = 0;
        for (int64_t i = 0; i < d; ++i) {
          gate += x[row * d + i] * w1[(e * f + o) * d + i];
          up += x[row * d + i] * w3[(e * f + o) * d + i];
        }
        hidden[o] = gate / (1.0 + std::exp(-gate)) * up;
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t o = 0; o < f; ++o)
          y[row * d + i] += hidden[o] * w2[(e * d + i) * f + o];
    }
  return y;
}

struct ExpertGrads {
  std::vector<float> dx, dw1, dw3, dw2;
};

ExpertGrads expertGrads(const std::vector<float> &x, Weight w1, Weight w3,
                        Weight w2, const std::vector<float> &dy,
                        const ExpertShape &s) {
  size_t weights = size_t(s.experts() * s.f * s.d);
  ExpertGrads g{std::vector<float>(x.size(), -1.0f),
                std::vector<float>(weights, -1.0f),
                std::vector<float>(weights, -1.0f),
                std::vector<float>(weights, -1.0f)};
  EXPECT_TRUE(expertMlpGrad(x.data(), s.counts.data(), s.experts(), s.d, s.f,
                            w1, w3, w2, dy.data(), g.dx.data(), g.dw1.data(),
                            g.dw3.data(), g.dw2.data())
                  .ok());
  return g;
}

void expectZeroSlice(const std::vector<float> &dw, int64_t e,
                     const ExpertShape &s) {
  for (int64_t i = e * s.f * s.d; i < (e + 1) * s.f * s.d; ++i)
    ASSERT_EQ(dw[i], 0.0f) << "expert " << e;
}

TEST(ExpertMlpGradTest, MatchesFiniteDifferences) {
  for (const ExpertShape &s : {ExpertShape{5, 7, {3, 0, 4}},
                               ExpertShape{6, 3, {0, 1, 0, 2}}}) {
    size_t weights = size_t(s.experts() * s.f * s.d);
    auto x = randomVector(s.rows() * s.d, 1);
    auto w1 = randomVector(weights, 2, 0.5f), w3 = randomVector(weights, 3, 0.5f);
    auto w2 = randomVector(weights, 4, 0.5f), r = randomVector(x.size(), 5);
    ExpertGrads ours = expertGrads(x, {w1.data(), DType::kF32},
                                   {w3.data(), DType::kF32},
                                   {w2.data(), DType::kF32}, r, s);
    auto xd = toDouble(x), w1d = toDouble(w1), w3d = toDouble(w3),
         w2d = toDouble(w2);
    auto dx = numericGradient(x, [&](const std::vector<double> &v) {
      return weightedSum(expertMlpOf(v, w1d, w3d, w2d, s), r);
    });
    auto dw1 = numericGradient(w1, [&](const std::vector<double> &v) {
      return weightedSum(expertMlpOf(xd, v, w3d, w2d, s), r);
    });
    auto dw3 = numericGradient(w3, [&](const std::vector<double> &v) {
      return weightedSum(expertMlpOf(xd, w1d, v, w2d, s), r);
    });
    auto dw2 = numericGradient(w2, [&](const std::vector<double> &v) {
      return weightedSum(expertMlpOf(xd, w1d, w3d, v, s), r);
    });
    EXPECT_LE(relativeError(ours.dx, dx), kGradTolerance);
    EXPECT_LE(relativeError(ours.dw1, dw1), kGradTolerance);
    EXPECT_LE(relativeError(ours.dw3, dw3), kGradTolerance);
    EXPECT_LE(relativeError(ours.dw2, dw2), kGradTolerance);
    for (int64_t e = 0; e < s.experts(); ++e)
      if (s.counts[e] == 0) {
        expectZeroSlice(ours.dw1, e, s);
        expectZeroSlice(ours.dw3, e, s);
        expectZeroSlice(ours.dw2, e, s);
      }
  }
}

TEST(ExpertMlpGradTest, NoRowsAtAllGiveZeroWeightGradients) {
  ExpertShape s{4, 3, {0, 0}};
  std::vector<float> w(s.experts() * s.f * s.d, 1.0f);
  ExpertGrads g = expertGrads({}, {w.data(), DType::kF32},
                              {w.data(), DType::kF32}, {w.data(), DType::kF32},
                              {}, s);
  EXPECT_EQ(g.dw1, std::vector<float>(w.size(), 0.0f));
  EXPECT_EQ(g.dw3, std::vector<float>(w.size(), 0.0f));
  EXPECT_EQ(g.dw2, std::vector<float>(w.size(), 0.0f));
}

TEST(ExpertMlpGradTest, Bf16AndF16Weights) {
  ExpertShape s{48, 40, {9, 0, 17}};
  size_t weights = size_t(s.experts() * s.f * s.d);
  auto x = randomVector(s.rows() * s.d, 6), dy = randomVector(x.size(), 7);
  std::vector<std::vector<float>> w = {randomVector(weights, 8, 0.2f),
                                       randomVector(weights, 9, 0.2f),
                                       randomVector(weights, 10, 0.2f)};
  // bf16: against fp32 math on the rounded weights (activations rounded
  // too when the GEMM is native).
  std::vector<std::vector<uint16_t>> bits;
  std::vector<std::vector<float>> rounded;
  for (auto &values : w) {
    bits.push_back(toBf16(values));
    rounded.push_back(roundedToBf16(values));
  }
  ExpertGrads ref = expertGrads(x, {rounded[0].data(), DType::kF32},
                                {rounded[1].data(), DType::kF32},
                                {rounded[2].data(), DType::kF32}, dy, s);
  ExpertGrads ours = expertGrads(x, {bits[0].data(), DType::kBF16},
                                 {bits[1].data(), DType::kBF16},
                                 {bits[2].data(), DType::kBF16}, dy, s);
  double tolerance = bf16MatmulIsNative() ? 2e-2 : 1e-5;
  EXPECT_LE(relativeError(ours.dx, toDouble(ref.dx)), tolerance);
  EXPECT_LE(relativeError(ours.dw1, toDouble(ref.dw1)), tolerance);
  EXPECT_LE(relativeError(ours.dw3, toDouble(ref.dw3)), tolerance);
  EXPECT_LE(relativeError(ours.dw2, toDouble(ref.dw2)), tolerance);
  expectZeroSlice(ours.dw1, 1, s);
  // f16: always widened to fp32, so only the weight rounding differs.
  for (size_t m = 0; m < 3; ++m)
    for (size_t i = 0; i < weights; ++i) {
      bits[m][i] = floatToF16(w[m][i]);
      rounded[m][i] = f16ToFloat(bits[m][i]);
    }
  ref = expertGrads(x, {rounded[0].data(), DType::kF32},
                    {rounded[1].data(), DType::kF32},
                    {rounded[2].data(), DType::kF32}, dy, s);
  ours = expertGrads(x, {bits[0].data(), DType::kF16},
                     {bits[1].data(), DType::kF16},
                     {bits[2].data(), DType::kF16}, dy, s);
  EXPECT_LE(relativeError(ours.dx, toDouble(ref.dx)), 1e-6);
  EXPECT_LE(relativeError(ours.dw2, toDouble(ref.dw2)), 1e-6);
}

TEST(MoeGradTest, SameResultOnOneAndTwoThreads) {
  ExpertShape s{64, 96, {130, 0, 7, 300}};
  size_t weights = size_t(s.experts() * s.f * s.d);
  auto x = randomVector(s.rows() * s.d, 11), dy = randomVector(x.size(), 12);
  auto w1 = randomVector(weights, 13, 0.2f), w3 = randomVector(weights, 14, 0.2f);
  auto w2 = randomVector(weights, 15, 0.2f);
  std::vector<uint16_t> b1 = toBf16(w1), b3 = toBf16(w3), b2 = toBf16(w2);
  int64_t tokens = 301, experts = 6, k = 2;
  auto logits = decisiveLogits(tokens, experts, 16);
  std::vector<float> routed(tokens * k), direct = randomVector(logits.size(), 17);
  std::vector<int32_t> indices(tokens * k);
  routerTopK(logits.data(), tokens, experts, k, true, routed.data(),
             indices.data());
  auto run = [&] {
    ExpertGrads f32 = expertGrads(x, {w1.data(), DType::kF32},
                                  {w3.data(), DType::kF32},
                                  {w2.data(), DType::kF32}, dy, s);
    ExpertGrads bf16 = expertGrads(x, {b1.data(), DType::kBF16},
                                   {b3.data(), DType::kBF16},
                                   {b2.data(), DType::kBF16}, dy, s);
    std::vector<float> dlogits(logits.size());
    routerGrad(logits.data(), indices.data(), routed.data(), direct.data(),
               tokens, experts, k, true, dlogits.data());
    return std::make_tuple(f32.dx, f32.dw1, f32.dw2, bf16.dx, bf16.dw3,
                           dlogits);
  };
  decltype(run()) one, two;
  withThreads(1, [&] { one = run(); });
  withThreads(2, [&] { two = run(); });
  EXPECT_TRUE(one == two);
}

TEST(ExpertMlpGradTest, SameResultOnOneAndTwoThreadsForBalancedExperts) {
  // Even experts run side by side on two threads (one-thread GEMMs) and
  // one after the other on one; uneven ones share every GEMM. Rows of
  // several experts differ a little, as routing leaves them.
  for (const ExpertShape &s :
       {ExpertShape{64, 96, {61, 70, 0, 66, 58, 73, 64}},
        ExpertShape{48, 80, {300, 4, 2}}, ExpertShape{32, 40, {1, 1}}}) {
    size_t weights = size_t(s.experts() * s.f * s.d);
    auto x = randomVector(s.rows() * s.d, 21), dy = randomVector(x.size(), 22);
    auto w1 = randomVector(weights, 23, 0.2f), w3 = randomVector(weights, 24, 0.2f);
    auto w2 = randomVector(weights, 25, 0.2f);
    std::vector<uint16_t> b1 = toBf16(w1), b3 = toBf16(w3), b2 = toBf16(w2);
    std::vector<uint16_t> h1(weights), h3(weights), h2(weights);
    for (size_t i = 0; i < weights; ++i) {
      h1[i] = floatToF16(w1[i]);
      h3[i] = floatToF16(w3[i]);
      h2[i] = floatToF16(w2[i]);
    }
    auto run = [&] {
      return std::make_tuple(
          expertGrads(x, {w1.data(), DType::kF32}, {w3.data(), DType::kF32},
                      {w2.data(), DType::kF32}, dy, s),
          expertGrads(x, {b1.data(), DType::kBF16}, {b3.data(), DType::kBF16},
                      {b2.data(), DType::kBF16}, dy, s),
          expertGrads(x, {h1.data(), DType::kF16}, {h3.data(), DType::kF16},
                      {h2.data(), DType::kF16}, dy, s));
    };
    decltype(run()) one, two;
    withThreads(1, [&] { one = run(); });
    withThreads(2, [&] { two = run(); });
    auto same = [](const ExpertGrads &a, const ExpertGrads &b) {
      return a.dx == b.dx && a.dw1 == b.dw1 && a.dw3 == b.dw3 &&
             a.dw2 == b.dw2;
    };
    EXPECT_TRUE(same(std::get<0>(one), std::get<0>(two))) << "f32";
    EXPECT_TRUE(same(std::get<1>(one), std::get<1>(two))) << "bf16";
    EXPECT_TRUE(same(std::get<2>(one), std::get<2>(two))) << "f16";
    // And still right: the f32 gradients against a second run (scratch
    // reused across calls must not leak between experts).
    ExpertGrads again = expertGrads(x, {w1.data(), DType::kF32},
                                    {w3.data(), DType::kF32},
                                    {w2.data(), DType::kF32}, dy, s);
    EXPECT_TRUE(same(again, std::get<0>(two)));
  }
}

TEST(ExpertMlpGradTest, KeptHiddenActivationsGiveTheRecomputedGradients) {
  // The forward pass keeps x w1^T and x w3^T; the backward pass reading them
  // must match the one recomputing them bit for bit (same GEMMs), on every
  // weight dtype and on even (side by side) and uneven experts.
  for (const ExpertShape &s : {ExpertShape{5, 7, {3, 0, 4}},
                               ExpertShape{64, 96, {61, 70, 0, 66, 58, 73, 64}}}) {
    size_t weights = size_t(s.experts() * s.f * s.d);
    auto x = randomVector(s.rows() * s.d, 31), dy = randomVector(x.size(), 32);
    auto w1 = randomVector(weights, 33, 0.2f), w3 = randomVector(weights, 34, 0.2f);
    auto w2 = randomVector(weights, 35, 0.2f);
    std::vector<uint16_t> b1 = toBf16(w1), b3 = toBf16(w3), b2 = toBf16(w2);
    for (DType type : {DType::kF32, DType::kBF16}) {
      bool bf16 = type == DType::kBF16;
      Weight g1{bf16 ? (const void *)b1.data() : w1.data(), type};
      Weight g3{bf16 ? (const void *)b3.data() : w3.data(), type};
      Weight g2{bf16 ? (const void *)b2.data() : w2.data(), type};
      std::vector<float> out(x.size()), plainOut(x.size());
      std::vector<float> gate(s.rows() * s.f), up(s.rows() * s.f);
      ASSERT_TRUE(expertMlp(x.data(), s.counts.data(), s.experts(), s.d, s.f,
                            g1, g3, g2, out.data(), gate.data(), up.data())
                      .ok());
      ASSERT_TRUE(expertMlp(x.data(), s.counts.data(), s.experts(), s.d, s.f,
                            g1, g3, g2, plainOut.data())
                      .ok());
      EXPECT_EQ(out, plainOut) << "keeping the activations changes the output";
      ExpertGrads recomputed = expertGrads(x, g1, g3, g2, dy, s);
      ExpertGrads kept{std::vector<float>(x.size()), std::vector<float>(weights),
                       std::vector<float>(weights), std::vector<float>(weights)};
      ASSERT_TRUE(expertMlpGrad(x.data(), s.counts.data(), s.experts(), s.d,
                                s.f, g1, g3, g2, dy.data(), kept.dx.data(),
                                kept.dw1.data(), kept.dw3.data(),
                                kept.dw2.data(), gate.data(), up.data())
                      .ok());
      EXPECT_EQ(kept.dx, recomputed.dx) << dtypeName(type);
      EXPECT_EQ(kept.dw1, recomputed.dw1) << dtypeName(type);
      EXPECT_EQ(kept.dw3, recomputed.dw3) << dtypeName(type);
      EXPECT_EQ(kept.dw2, recomputed.dw2) << dtypeName(type);
    }
  }
}

TEST(ExpertMlpGradTest, BalancedExpertsMatchDoubleMath) {
  // Experts side by side (on two threads) against the double reference:
  // dx through dh = d(silu(x w1^T) * (x w3^T)), checked at a point.
  ExpertShape s{24, 20, {9, 11, 10, 8}};
  size_t weights = size_t(s.experts() * s.f * s.d);
  auto x = randomVector(s.rows() * s.d, 31), r = randomVector(x.size(), 32);
  auto w1 = randomVector(weights, 33, 0.3f), w3 = randomVector(weights, 34, 0.3f);
  auto w2 = randomVector(weights, 35, 0.3f);
  ExpertGrads ours;
  withThreads(2, [&] {
    ours = expertGrads(x, {w1.data(), DType::kF32}, {w3.data(), DType::kF32},
                       {w2.data(), DType::kF32}, r, s);
  });
  auto w1d = toDouble(w1), w3d = toDouble(w3), w2d = toDouble(w2),
       xd = toDouble(x);
  auto dx = numericGradient(x, [&](const std::vector<double> &v) {
    return weightedSum(expertMlpOf(v, w1d, w3d, w2d, s), r);
  });
  auto dw2 = numericGradient(w2, [&](const std::vector<double> &v) {
    return weightedSum(expertMlpOf(xd, w1d, w3d, v, s), r);
  });
  EXPECT_LE(relativeError(ours.dx, dx), kGradTolerance);
  EXPECT_LE(relativeError(ours.dw2, dw2), kGradTolerance);
}

} // namespace
} // namespace moert::cpu::testing
