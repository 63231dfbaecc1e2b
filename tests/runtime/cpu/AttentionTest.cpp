//===- AttentionTest.cpp - grouped-query attention ------------------------===//

#include "runtime/cpu/AttentionBlocks.h"
#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace moert::cpu::testing {
namespace {

struct Problem {
  int64_t batch, seq, heads, kvHeads, headDim;
  bool causal;
};

std::vector<double> naiveAttention(const Problem &p,
                                   const std::vector<float> &q,
                                   const std::vector<float> &k,
                                   const std::vector<float> &v, double scale) {
  std::vector<double> out(q.size(), 0.0);
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads; ++h)
      for (int64_t i = 0; i < p.seq; ++i) {
        int64_t g = h / (p.heads / p.kvHeads);
        int64_t visible = p.causal ? i + 1 : p.seq;
        std::vector<double> probs(visible);
        double best = -1e300, total = 0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (int64_t t = 0; t < p.headDim; ++t)
            dot += double(q[((b * p.seq + i) * p.heads + h) * p.headDim + t]) *
                   k[((b * p.seq + j) * p.kvHeads + g) * p.headDim + t];
          best = std::max(best, probs[j] = dot * scale);
        }
        for (double &value : probs)
          total += value = std::exp(value - best);
        for (int64_t j = 0; j < visible; ++j)
          for (int64_t t = 0; t < p.headDim; ++t)
            out[((b * p.seq + i) * p.heads + h) * p.headDim + t] +=
                probs[j] / total *
                v[((b * p.seq + j) * p.kvHeads + g) * p.headDim + t];
      }
  return out;
}

std::vector<float> run(const Problem &p, const std::vector<float> &q,
                       const std::vector<float> &k, const std::vector<float> &v,
                       double scale, bool bf16 = false) {
  std::vector<float> out(q.size());
  attention(q.data(), k.data(), v.data(), p.batch, p.seq, p.heads, p.kvHeads,
            p.headDim, p.causal, scale, out.data(), bf16);
  return out;
}

TEST(AttentionTest, MatchesReference) {
  for (Problem p :
       {Problem{2, 13, 6, 2, 12, true}, Problem{2, 13, 6, 2, 12, false},
        Problem{1, 1, 3, 3, 5, true}, Problem{3, 7, 4, 1, 9, true}}) {
    auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 1, 2.0f);
    auto k = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 2, 2.0f);
    auto v = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 3);
    double scale = 1.0 / std::sqrt(double(p.headDim));
    EXPECT_LE(relativeError(run(p, q, k, v, scale),
                            naiveAttention(p, q, k, v, scale)),
              1e-5)
        << "B=" << p.batch << " S=" << p.seq << " H=" << p.heads
        << " Hkv=" << p.kvHeads << " causal=" << p.causal;
  }
}

TEST(AttentionTest, MatchesReferenceAcrossBlockEdges) {
  // The kernel works on blocks of 32 query rows and 16-wide vectors of keys
  // and head dims: lengths on either side of those edges, odd head dims,
  // one position, groups of 1, 2 and 3 query heads per KV head.
  for (Problem p :
       {Problem{1, 1, 2, 1, 7, false}, Problem{2, 31, 3, 3, 16, true},
        Problem{1, 33, 6, 2, 7, true}, Problem{1, 33, 6, 2, 7, false},
        Problem{2, 70, 4, 2, 20, true}, Problem{1, 65, 2, 1, 72, false},
        Problem{1, 100, 3, 1, 33, true}}) {
    auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 11, 2.0f);
    auto k = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 12, 2.0f);
    auto v = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 13);
    double scale = 1.0 / std::sqrt(double(p.headDim));
    EXPECT_LE(relativeError(run(p, q, k, v, scale),
                            naiveAttention(p, q, k, v, scale)),
              1e-5)
        << "B=" << p.batch << " S=" << p.seq << " H=" << p.heads
        << " Hkv=" << p.kvHeads << " Dh=" << p.headDim
        << " causal=" << p.causal;
  }
}

TEST(AttentionTest, ScoresBeyondExpRangeStayFinite) {
  // Integer q and k make the scores exact in fp32, up to 4 * 8 * 8 = 256:
  // exp(256) overflows unless the row maximum is subtracted first.
  Problem p{1, 5, 2, 1, 4, true};
  auto integers = [](size_t n, unsigned seed) {
    std::vector<float> values = randomVector(n, seed, 4.0f);
    for (float &value : values)
      value = std::clamp(std::round(value), -8.0f, 8.0f);
    return values;
  };
  auto q = integers(p.seq * p.heads * p.headDim, 4);
  auto k = integers(p.seq * p.kvHeads * p.headDim, 5);
  auto v = randomVector(p.seq * p.kvHeads * p.headDim, 6);
  EXPECT_LE(
      relativeError(run(p, q, k, v, 1.0), naiveAttention(p, q, k, v, 1.0)),
      1e-5);
}

TEST(AttentionTest, SameResultOnOneAndTwoThreads) {
  Problem p{2, 13, 6, 2, 12, true};
  auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 7);
  auto kv = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 8);
  std::vector<float> one, two;
  withThreads(1, [&] { one = run(p, q, kv, kv, 0.3); });
  withThreads(2, [&] { two = run(p, q, kv, kv, 0.3); });
  EXPECT_EQ(one, two);
}

TEST(AttentionTest, SameResultOnAnyThreadCount) {
  // Several query blocks per head, fewer tasks than some thread counts;
  // fp32 and bf16 products.
  for (bool bf16 : {false, true})
    for (Problem p :
         {Problem{1, 77, 3, 1, 40, true}, Problem{3, 45, 4, 2, 9, false}}) {
      auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 14);
      auto k = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 15);
      auto v = randomVector(k.size(), 16);
      std::vector<float> one, two, three;
      withThreads(1, [&] { one = run(p, q, k, v, 0.2, bf16); });
      withThreads(2, [&] { two = run(p, q, k, v, 0.2, bf16); });
      withThreads(3, [&] { three = run(p, q, k, v, 0.2, bf16); });
      EXPECT_EQ(one, two);
      EXPECT_EQ(one, three);
    }
}

TEST(AttentionTest, Bf16ProductsStayCloseToTheReference) {
  // With AVX512-BF16 and an even head size the products take bf16-rounded
  // q, k, v and probabilities (relative rounding 2^-9); otherwise the fp32
  // kernel runs.
  for (Problem p :
       {Problem{2, 70, 4, 2, 20, true}, Problem{1, 65, 2, 1, 72, false},
        Problem{1, 33, 6, 2, 7, true}, Problem{2, 256, 2, 2, 64, true},
        Problem{1, 1, 2, 1, 8, true}}) {
    auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 21, 2.0f);
    auto k = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 22, 2.0f);
    auto v = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 23);
    double scale = 1.0 / std::sqrt(double(p.headDim));
    std::vector<float> ours = run(p, q, k, v, scale, /*bf16=*/true);
    std::string name =
        "S=" + std::to_string(p.seq) + " Dh=" + std::to_string(p.headDim);
    if (!attention_blocks::attentionBf16IsNative(p.headDim)) {
      EXPECT_EQ(ours, run(p, q, k, v, scale)) << name;
      continue;
    }
    double error = relativeError(ours, naiveAttention(p, q, k, v, scale));
    EXPECT_LE(error, 1e-2) << name;
    if (p.seq > 1) { // one key: the output is v itself, rounded
      EXPECT_GT(error, 1e-5) << name << ": nothing was rounded";
    }
  }
}

// Activations a bf16 model reads only rounded are stored rounded
// (runtime/artifact/Bf16Activations.h): the bf16 kernel must give the same
// bits for q, k, v and for their bf16 roundings, whatever the scale (heads of
// 24 and 20 features: scales that are not powers of two).
TEST(AttentionTest, Bf16ProductsGiveTheSameBitsForRoundedInputs) {
  for (Problem p : {Problem{2, 70, 4, 2, 24, true}, Problem{1, 40, 2, 1, 20, false}}) {
    if (!attention_blocks::attentionBf16IsNative(p.headDim))
      GTEST_SKIP() << "no AVX512-BF16: the fp32 kernel runs";
    auto q = randomVector(p.batch * p.seq * p.heads * p.headDim, 31, 2.0f);
    auto k = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 32, 2.0f);
    auto v = randomVector(p.batch * p.seq * p.kvHeads * p.headDim, 33);
    double scale = 1.0 / std::sqrt(double(p.headDim));
    std::vector<float> ours = run(p, q, k, v, scale, /*bf16=*/true);
    EXPECT_EQ(ours, run(p, roundedToBf16(q), roundedToBf16(k),
                        roundedToBf16(v), scale, /*bf16=*/true))
        << "Dh=" << p.headDim;
    // And read as stored, with the output stored rounded.
    std::vector<uint16_t> qBits = toBf16(q), kBits = toBf16(k),
                          vBits = toBf16(v), stored(q.size());
    attentionStoredBf16(qBits.data(), kBits.data(), vBits.data(), p.batch,
                        p.seq, p.heads, p.kvHeads, p.headDim, p.causal, scale,
                        stored.data());
    EXPECT_EQ(stored, toBf16(ours)) << "stored, Dh=" << p.headDim;
  }
}

} // namespace
} // namespace moert::cpu::testing
