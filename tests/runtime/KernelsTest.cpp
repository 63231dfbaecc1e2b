//===- KernelsTest.cpp - CPU kernels against naive double references ------===//
//
// Whole models are checked against PyTorch in tests/e2e; these tests pin each
// kernel alone, with awkward sizes, against loops written here in double.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <omp.h>
#include <random>

using namespace moert;
using namespace moert::cpu;

namespace {
std::vector<float> randomVector(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = normal(gen);
  return v;
}

double relativeError(const std::vector<float> &ours, const std::vector<double> &ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (ours[i] - ref[i]) * (ours[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(diff / norm);
}

std::vector<double> naiveLinear(const std::vector<float> &x, const std::vector<float> &w,
                                int64_t m, int64_t k, int64_t n) {
  std::vector<double> y(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t t = 0; t < k; ++t)
        y[i * n + j] += double(x[i * k + t]) * w[j * k + t];
  return y;
}

TEST(KernelsTest, LinearF32) {
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 7, 5},
                         {13, 33, 17},
                         {64, 100, 96}}) {
    auto x = randomVector(m * k, 1), w = randomVector(n * k, 2);
    std::vector<float> y(m * n);
    ASSERT_TRUE(linear(x.data(), m, k, {w.data(), DType::kF32}, n, y.data()).ok());
    EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-5);
  }
}

TEST(KernelsTest, LinearBf16AccumulatesInFp32) {
  int64_t m = 19, k = 45, n = 23;
  auto x = randomVector(m * k, 3), w = randomVector(n * k, 4);
  std::vector<uint16_t> wb(w.size());
  std::vector<float> xr(x.size()), wr(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    wr[i] = bf16ToFloat(wb[i] = floatToBf16(w[i]));
  for (size_t i = 0; i < x.size(); ++i)
    xr[i] = bf16ToFloat(floatToBf16(x[i]));
  std::vector<float> y(m * n);
  ASSERT_TRUE(linear(x.data(), m, k, {wb.data(), DType::kBF16}, n, y.data()).ok());
  // Against the same bf16-rounded operands, only accumulation order differs
  // (or x is not rounded at all on the fp32 fallback path).
  EXPECT_LE(relativeError(y, naiveLinear(bf16MatmulIsNative() ? xr : x, wr, m, k, n)),
            1e-5);
}

TEST(KernelsTest, RmsNormAndRope) {
  int64_t rows = 5, d = 12;
  auto x = randomVector(rows * d, 5), w = randomVector(d, 6);
  std::vector<float> y(rows * d);
  rmsNorm(x.data(), {w.data(), DType::kF32}, rows, d, 1e-5, y.data());
  std::vector<double> ref(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < d; ++i)
      ms += double(x[r * d + i]) * x[r * d + i] / d;
    for (int64_t i = 0; i < d; ++i)
      ref[r * d + i] = x[r * d + i] / std::sqrt(ms + 1e-5) * w[i];
  }
  EXPECT_LE(relativeError(y, ref), 1e-6);

  // Rotation keeps each (i, i + Dh/2) pair's norm and rotates by pos*freq.
  int64_t batch = 2, seq = 3, heads = 2, hd = 6;
  auto q = randomVector(batch * seq * heads * hd, 7);
  std::vector<float> r = q;
  rope(r.data(), batch, seq, heads, hd, 10000.0, nullptr, DType::kI32);
  std::vector<double> expected(q.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < hd / 2; ++i) {
          int64_t base = ((b * seq + s) * heads + h) * hd;
          double angle = s * std::pow(10000.0, -2.0 * i / hd);
          double a = q[base + i], c = q[base + i + hd / 2];
          expected[base + i] = a * std::cos(angle) - c * std::sin(angle);
          expected[base + i + hd / 2] = c * std::cos(angle) + a * std::sin(angle);
        }
  EXPECT_LE(relativeError(r, expected), 1e-6);
}

TEST(KernelsTest, CausalGroupedQueryAttention) {
  int64_t batch = 2, seq = 13, heads = 6, kvHeads = 2, hd = 12;
  auto q = randomVector(batch * seq * heads * hd, 8);
  auto k = randomVector(batch * seq * kvHeads * hd, 9);
  auto v = randomVector(batch * seq * kvHeads * hd, 10);
  double scale = 1.0 / std::sqrt(double(hd));
  std::vector<float> out(q.size());
  attention(q.data(), k.data(), v.data(), batch, seq, heads, kvHeads, hd, true,
            scale, out.data());
  std::vector<double> ref(q.size(), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        int64_t g = h / (heads / kvHeads);
        std::vector<double> p(i + 1);
        double best = -1e300, total = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t t = 0; t < hd; ++t)
            dot += double(q[((b * seq + i) * heads + h) * hd + t]) *
                   k[((b * seq + j) * kvHeads + g) * hd + t];
          best = std::max(best, p[j] = dot * scale);
        }
        for (double &x : p)
          total += x = std::exp(x - best);
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t t = 0; t < hd; ++t)
            ref[((b * seq + i) * heads + h) * hd + t] +=
                p[j] / total * v[((b * seq + j) * kvHeads + g) * hd + t];
      }
  EXPECT_LE(relativeError(out, ref), 1e-5);
}

TEST(KernelsTest, RoutingIsDroplessAndCombineInvertsDispatch) {
  int64_t tokens = 11, experts = 4, k = 2, d = 6;
  auto logits = randomVector(tokens * experts, 11);
  std::vector<float> weights(tokens * k);
  std::vector<int32_t> indices(tokens * k);
  routerTopK(logits.data(), tokens, experts, k, true, weights.data(), indices.data());
  for (int64_t t = 0; t < tokens; ++t) {
    EXPECT_NEAR(weights[t * k] + weights[t * k + 1], 1.0f, 1e-6);
    EXPECT_GE(weights[t * k], weights[t * k + 1]);
    EXPECT_NE(indices[t * k], indices[t * k + 1]);
    // The chosen experts are the two largest logits.
    std::vector<int32_t> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      return logits[t * experts + a] > logits[t * experts + b];
    });
    EXPECT_EQ(indices[t * k], order[0]);
    EXPECT_EQ(indices[t * k + 1], order[1]);
  }
  // Force an expert with no tokens: nothing is dropped or padded.
  for (int32_t &e : indices)
    if (e == 3)
      e = 0;
  for (int64_t t = 0; t < tokens; ++t)
    if (indices[t * k] == indices[t * k + 1])
      indices[t * k + 1] = indices[t * k] == 1 ? 2 : 1;

  auto x = randomVector(tokens * d, 12);
  std::vector<float> grouped(tokens * k * d), out(tokens * d);
  std::vector<int64_t> counts(experts);
  std::vector<int32_t> slots(tokens * k);
  ASSERT_TRUE(dispatch(x.data(), indices.data(), tokens, k, experts, d,
                       grouped.data(), counts.data(), slots.data()).ok());
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t(0)), tokens * k);
  EXPECT_EQ(counts[3], 0);
  std::vector<int32_t> sorted = slots;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t s = 0; s < tokens * k; ++s)
    EXPECT_EQ(sorted[s], s);
  // Rows are grouped by ascending expert, stable within an expert.
  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t r = 0; r < counts[e]; ++r, ++row) {
      EXPECT_EQ(indices[slots[row]], e);
      if (r > 0) {
        EXPECT_LT(slots[row - 1], slots[row]);
      }
    }
  // Identity experts: combine(dispatch(x)) = x * (sum of weights) = x.
  ASSERT_TRUE(combine(grouped.data(), weights.data(), slots.data(), tokens, k, d,
                      out.data()).ok());
  for (int64_t i = 0; i < tokens * d; ++i)
    EXPECT_NEAR(out[i], x[i], 1e-5);

  std::vector<int32_t> bad = indices;
  bad[3] = experts;
  EXPECT_FALSE(dispatch(x.data(), bad.data(), tokens, k, experts, d,
                        grouped.data(), counts.data(), slots.data()).ok());
}

TEST(KernelsTest, ExpertMlpMatchesPerTokenExperts) {
  int64_t experts = 3, d = 10, f = 14;
  std::vector<int64_t> counts = {4, 0, 3};
  int64_t rows = 7;
  auto x = randomVector(rows * d, 13);
  auto w1 = randomVector(experts * f * d, 14, 0.3f);
  auto w3 = randomVector(experts * f * d, 15, 0.3f);
  auto w2 = randomVector(experts * d * f, 16, 0.3f);
  std::vector<float> out(rows * d);
  ASSERT_TRUE(expertMlp(x.data(), counts.data(), experts, d, f,
                        {w1.data(), DType::kF32}, {w3.data(), DType::kF32},
                        {w2.data(), DType::kF32}, out.data()).ok());
  std::vector<double> ref(rows * d, 0.0);
  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t r = 0; r < counts[e]; ++r, ++row) {
      std::vector<double> h(f);
      for (int64_t j = 0; j < f; ++j) {
        double g = 0, u = 0;
        for (int64_t t = 0; t < d; ++t) {
          g += double(x[row * d + t]) * w1[(e * f + j) * d + t];
          u += double(x[row * d + t]) * w3[(e * f + j) * d + t];
        }
        h[j] = g / (1 + std::exp(-g)) * u;
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < f; ++j)
          ref[row * d + i] += h[j] * w2[(e * d + i) * f + j];
    }
  EXPECT_LE(relativeError(out, ref), 1e-5);
}

TEST(KernelsTest, LossesMatchTheirDefinitions) {
  int64_t rows = 4, vocab = 7;
  auto logits = randomVector(rows * vocab, 17);
  std::vector<int32_t> labels = {1, -100, 6, 0};
  float loss;
  ASSERT_TRUE(crossEntropy(logits.data(), labels.data(), rows, vocab, -100, &loss).ok());
  double expected = 0;
  for (int64_t r : {0, 2, 3}) {
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v)
      total += std::exp(double(logits[r * vocab + v]));
    expected += std::log(total) - logits[r * vocab + labels[r]];
  }
  EXPECT_NEAR(loss, expected / 3, 1e-5);

  // Uniform router logits: every P_e = 1/E, the top-k ties go to the first
  // k experts, so aux = E * sum_{e<k} 1 * 1/E = k.
  std::vector<float> uniform(6 * 4, 0.0f);
  loadBalancingLoss({uniform.data(), uniform.data()}, {6, 6}, 4, 2, &loss);
  EXPECT_NEAR(loss, 2.0f, 1e-6);
}

TEST(KernelsTest, EmbeddingRejectsIdsOutsideTheVocabulary) {
  std::vector<float> table(5 * 3, 1.0f), out(2 * 3);
  std::vector<int32_t> ids = {4, 5};
  absl::Status status = embedding({table.data(), DType::kF32}, 5, 3, ids.data(), 2,
                                  out.data());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "token id 5 at position 1 is outside the vocabulary [0, 5)");
}

TEST(KernelsTest, ResultsDoNotDependOnThreadCount) {
  int64_t batch = 1, seq = 9, heads = 4, kvHeads = 2, hd = 8;
  auto q = randomVector(batch * seq * heads * hd, 18);
  auto kv = randomVector(batch * seq * kvHeads * hd, 19);
  std::vector<float> two(q.size()), one(q.size());
  attention(q.data(), kv.data(), kv.data(), batch, seq, heads, kvHeads, hd, true,
            0.3, two.data());
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  attention(q.data(), kv.data(), kv.data(), batch, seq, heads, kvHeads, hd, true,
            0.3, one.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
}
} // namespace
