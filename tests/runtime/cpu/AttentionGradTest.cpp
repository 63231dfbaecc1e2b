//===- AttentionGradTest.cpp - backward of grouped-query attention --------===//

#include "runtime/cpu/AttentionBlocks.h"
#include "runtime/cpu/Grad.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

namespace moert::cpu::testing {
namespace {

struct Config {
  int64_t batch, seq, heads, kvHeads, headDim;
  bool causal;
};

std::vector<double> attentionOf(const std::vector<double> &q,
                                const std::vector<double> &k,
                                const std::vector<double> &v, const Config &c,
                                double scale) {
  int64_t group = c.heads / c.kvHeads;
  int64_t qStride = c.heads * c.headDim, kvStride = c.kvHeads * c.headDim;
  std::vector<double> out(q.size(), 0.0);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.seq; ++i) {
        int64_t visible = c.causal ? i + 1 : c.seq;
        std::vector<double> weights(visible);
        double total = 0;
        for (int64_t j = 0; j < visible; ++j) {
          double score = 0;
          for (int64_t t = 0; t < c.headDim; ++t)
            score +=
                q[(b * c.seq + i) * qStride + h * c.headDim + t] *
                k[(b * c.seq + j) * kvStride + (h / group) * c.headDim + t];
          total += weights[j] = std::exp(score * scale);
        }
        for (int64_t j = 0; j < visible; ++j)
          for (int64_t t = 0; t < c.headDim; ++t)
            out[(b * c.seq + i) * qStride + h * c.headDim + t] +=
                weights[j] / total *
                v[(b * c.seq + j) * kvStride + (h / group) * c.headDim + t];
      }
  return out;
}

struct AttentionGrads {
  std::vector<float> dq, dk, dv;
};

AttentionGrads grads(const std::vector<float> &q, const std::vector<float> &k,
                     const std::vector<float> &v, const std::vector<float> &dy,
                     const Config &c, double scale, bool bf16 = false) {
  AttentionGrads g{std::vector<float>(q.size(), -1.0f),
                   std::vector<float>(k.size(), -1.0f),
                   std::vector<float>(v.size(), -1.0f)};
  attentionGrad(q.data(), k.data(), v.data(), dy.data(), c.batch, c.seq,
                c.heads, c.kvHeads, c.headDim, c.causal, scale, g.dq.data(),
                g.dk.data(), g.dv.data(), bf16);
  return g;
}

TEST(AttentionGradTest, MatchesFiniteDifferences) {
  for (Config c :
       {Config{2, 7, 4, 2, 6, true}, Config{2, 7, 4, 2, 6, false},
        Config{1, 5, 3, 3, 5, true}, Config{1, 6, 3, 1, 4, false},
        Config{1, 1, 2, 1, 3, true},
        // Across the kernel's 32-row blocks and 16-wide vectors:
        // odd and padded head dims, groups of 3 and 2.
        Config{1, 33, 6, 2, 7, true}, Config{1, 33, 6, 2, 7, false},
        Config{1, 40, 2, 1, 20, true}, Config{1, 34, 1, 1, 66, false},
        Config{2, 1, 3, 1, 5, false}}) {
    double scale = 1.0 / std::sqrt(double(c.headDim));
    auto q = randomVector(c.batch * c.seq * c.heads * c.headDim, 1);
    auto k = randomVector(c.batch * c.seq * c.kvHeads * c.headDim, 2);
    auto v = randomVector(k.size(), 3);
    auto r = randomVector(q.size(), 4);
    AttentionGrads ours = grads(q, k, v, r, c, scale);
    auto dq = numericGradient(q, [&](const std::vector<double> &qs) {
      return weightedSum(attentionOf(qs, toDouble(k), toDouble(v), c, scale),
                         r);
    });
    auto dk = numericGradient(k, [&](const std::vector<double> &ks) {
      return weightedSum(attentionOf(toDouble(q), ks, toDouble(v), c, scale),
                         r);
    });
    auto dv = numericGradient(v, [&](const std::vector<double> &vs) {
      return weightedSum(attentionOf(toDouble(q), toDouble(k), vs, c, scale),
                         r);
    });
    std::string name =
        "S=" + std::to_string(c.seq) + " H=" + std::to_string(c.heads) +
        " Hkv=" + std::to_string(c.kvHeads) +
        " Dh=" + std::to_string(c.headDim) + (c.causal ? " causal" : " full");
    if (c.seq > 1) {
      EXPECT_LE(relativeError(ours.dq, dq), kGradTolerance) << name;
      EXPECT_LE(relativeError(ours.dk, dk), kGradTolerance) << name;
    } else { // one visible key: the softmax is constant
      EXPECT_EQ(ours.dq, std::vector<float>(q.size(), 0.0f)) << name;
      EXPECT_EQ(ours.dk, std::vector<float>(k.size(), 0.0f)) << name;
    }
    EXPECT_LE(relativeError(ours.dv, dv), kGradTolerance) << name;
  }
}

TEST(AttentionGradTest, SameResultOnAnyThreadCount) {
  for (bool bf16 : {false, true})
    for (Config c :
         {Config{1, 67, 4, 2, 16, true}, Config{2, 33, 3, 3, 8, false},
          Config{1, 50, 6, 2, 70, true}}) {
      auto q = randomVector(c.batch * c.seq * c.heads * c.headDim, 5);
      auto k = randomVector(c.batch * c.seq * c.kvHeads * c.headDim, 6);
      auto v = randomVector(k.size(), 7), dy = randomVector(q.size(), 8);
      AttentionGrads one, two, three;
      withThreads(1, [&] { one = grads(q, k, v, dy, c, 0.25, bf16); });
      withThreads(2, [&] { two = grads(q, k, v, dy, c, 0.25, bf16); });
      withThreads(3, [&] { three = grads(q, k, v, dy, c, 0.25, bf16); });
      EXPECT_EQ(one.dq, two.dq);
      EXPECT_EQ(one.dk, two.dk);
      EXPECT_EQ(one.dv, two.dv);
      EXPECT_EQ(one.dq, three.dq);
      EXPECT_EQ(one.dk, three.dk);
      EXPECT_EQ(one.dv, three.dv);
    }
}

TEST(AttentionGradTest, Bf16ProductsStayCloseToFp32) {
  // The fp32 kernel, checked against finite differences above, is the
  // reference; bf16 rounding of every product's operands moves the
  // gradients by about 2^-9 relative. Odd head sizes run the fp32 kernel.
  for (Config c : {Config{1, 67, 4, 2, 16, true}, Config{2, 33, 3, 3, 8, false},
                   Config{1, 50, 6, 2, 70, true}, Config{1, 40, 2, 1, 7, true},
                   Config{2, 256, 2, 2, 64, true}}) {
    double scale = 1.0 / std::sqrt(double(c.headDim));
    auto q = randomVector(c.batch * c.seq * c.heads * c.headDim, 31);
    auto k = randomVector(c.batch * c.seq * c.kvHeads * c.headDim, 32);
    auto v = randomVector(k.size(), 33), dy = randomVector(q.size(), 34);
    AttentionGrads fp32 = grads(q, k, v, dy, c, scale);
    AttentionGrads ours = grads(q, k, v, dy, c, scale, /*bf16=*/true);
    std::string name =
        "S=" + std::to_string(c.seq) + " Dh=" + std::to_string(c.headDim);
    if (!attention_blocks::attentionBf16IsNative(c.headDim)) {
      EXPECT_EQ(ours.dq, fp32.dq) << name;
      EXPECT_EQ(ours.dk, fp32.dk) << name;
      EXPECT_EQ(ours.dv, fp32.dv) << name;
      continue;
    }
    for (auto [mine, reference] :
         {std::pair{&ours.dq, &fp32.dq}, std::pair{&ours.dk, &fp32.dk},
          std::pair{&ours.dv, &fp32.dv}}) {
      double error = relativeError(*mine, toDouble(*reference));
      EXPECT_LE(error, 2e-2) << name;
      EXPECT_GT(error, 1e-5) << name << ": nothing was rounded";
    }
  }
}

// As AttentionTest's: q, k and v stored as bf16 give the bf16 kernel's bits.
TEST(AttentionGradTest, Bf16ProductsGiveTheSameBitsForRoundedInputs) {
  Config c{2, 45, 4, 2, 24, true};
  if (!attention_blocks::attentionBf16IsNative(c.headDim))
    GTEST_SKIP() << "no AVX512-BF16: the fp32 kernel runs";
  double scale = 1.0 / std::sqrt(double(c.headDim));
  auto q = randomVector(c.batch * c.seq * c.heads * c.headDim, 41);
  auto k = randomVector(c.batch * c.seq * c.kvHeads * c.headDim, 42);
  auto v = randomVector(k.size(), 43), dy = randomVector(q.size(), 44);
  AttentionGrads stored = grads(roundedToBf16(q), roundedToBf16(k),
                                roundedToBf16(v), dy, c, scale, /*bf16=*/true);
  AttentionGrads ours = grads(q, k, v, dy, c, scale, /*bf16=*/true);
  EXPECT_EQ(stored.dq, ours.dq);
  EXPECT_EQ(stored.dk, ours.dk);
  EXPECT_EQ(stored.dv, ours.dv);
  // And read as stored.
  std::vector<uint16_t> qBits = toBf16(q), kBits = toBf16(k), vBits = toBf16(v);
  AttentionGrads read{std::vector<float>(q.size()), std::vector<float>(k.size()),
                      std::vector<float>(v.size())};
  attentionGradStoredBf16(qBits.data(), kBits.data(), vBits.data(), dy.data(),
                          c.batch, c.seq, c.heads, c.kvHeads, c.headDim,
                          c.causal, scale, read.dq.data(), read.dk.data(),
                          read.dv.data());
  EXPECT_EQ(read.dq, ours.dq);
  EXPECT_EQ(read.dk, ours.dk);
  EXPECT_EQ(read.dv, ours.dv);
}

} // namespace
} // namespace moert::cpu::testing
