//===- FusedExpertsTest.cpp - the fused MoE block against the chain -------===//
//
// The fused kernels against the unfused chain (router linear, routerTopK,
// dispatch, expertMlp, combine and their backward kernels, each checked
// against finite differences and double loops in MoeTest and MoeGradTest),
// on routings with experts that get no row, one row or every row, top-1 and
// top-2 of 3 to 64 experts, widths that are not multiples of the vector
// width, fp32 and bf16 weights, and 1, 2 and 3 threads (bit-identical).
// Experts of up to 4 rows take the streaming path (ExpertStreaming.h): every
// expert in the 3-token case, some of them in the 64-expert ones. Weights
// repacked for the GEMM (PackedExperts.h) are checked the same way.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertRouting.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/PackedExperts.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <tuple>

namespace moert::cpu::testing {
namespace {

struct Case {
  int64_t experts, k, d, f, tokens;
};

/// A block whose routing has an expert with every row (0, through a bias
/// feature), one with a single row (1, picked by token 5 alone) and one with
/// none (the last), the rest random.
struct Block {
  Case c;
  std::vector<float> x, router, gate, up, down, dout, dlogitsExtra;
  std::vector<uint16_t> routerBf16, gateBf16, upBf16, downBf16;

  explicit Block(Case c) : c(c) {
    unsigned seed = unsigned(c.experts * 100 + c.k * 10 + c.d);
    x = randomVector(c.tokens * c.d, seed, 0.3f);
    router = randomVector(c.experts * c.d, seed + 1, 0.3f);
    for (int64_t t = 0; t < c.tokens; ++t) {
      x[t * c.d] = 1.0f;
      x[t * c.d + 1] = t == 5 ? 1.0f : 0.0f;
    }
    for (int64_t e = 0; e < c.experts; ++e) {
      bool rare = e == 1 || e == c.experts - 1;
      router[e * c.d] = e == 0 ? 10.0f : rare ? -10.0f : 0.0f;
      router[e * c.d + 1] = e == 1 ? 40.0f : 0.0f;
    }
    size_t weights = size_t(c.experts * c.f * c.d);
    gate = randomVector(weights, seed + 2, 0.3f);
    up = randomVector(weights, seed + 3, 0.3f);
    down = randomVector(weights, seed + 4, 0.3f);
    dout = randomVector(x.size(), seed + 5);
    dlogitsExtra = randomVector(c.tokens * c.experts, seed + 6, 0.1f);
    routerBf16 = toBf16(router);
    gateBf16 = toBf16(gate);
    upBf16 = toBf16(up);
    downBf16 = toBf16(down);
  }

  MoeBlockWeights weights(bool bf16) const {
    DType t = bf16 ? DType::kBF16 : DType::kF32;
    auto w = [&](const std::vector<float> &f32,
                 const std::vector<uint16_t> &b) {
      return Weight{bf16 ? static_cast<const void *>(b.data()) : f32.data(), t};
    };
    return {w(router, routerBf16), w(gate, gateBf16), w(up, upBf16),
            w(down, downBf16),     c.experts,         c.d,
            c.f};
  }
};

/// Output, logits and every gradient, in one tuple so results compare whole.
using Result = std::vector<std::vector<float>>;

/// The fused block forward and backward; with `keep`, the backward reads
/// the hidden states the forward kept instead of recomputing them.
Result runFused(const Block &b, bool bf16, UnlabelledTail skipped = {},
                bool keep = false) {
  const Case &c = b.c;
  MoeBlockWeights w = b.weights(bf16);
  std::vector<float> out(b.x.size()), logits(c.tokens * c.experts);
  std::vector<float> keptGate(keep ? c.tokens * c.k * c.f : 0),
      keptUp(keptGate.size());
  KeptHidden kept;
  if (keep)
    kept = {keptGate.data(), keptUp.data()};
  EXPECT_TRUE(fusedExperts(b.x.data(), c.tokens, w, c.k, true, out.data(),
                           logits.data(), nullptr, 1, skipped, kept)
                  .ok());
  std::vector<float> dx(b.x.size()), drouter(b.router.size()),
      dgate(b.gate.size()), dup(b.gate.size()), ddown(b.gate.size());
  EXPECT_TRUE(fusedExpertsGrad(b.x.data(), c.tokens, w, c.k, true,
                               logits.data(), b.dout.data(),
                               b.dlogitsExtra.data(), dx.data(),
                               drouter.data(), dgate.data(), dup.data(),
                               ddown.data(), nullptr, 1, skipped, kept)
                  .ok());
  return {out, logits, dx, drouter, dgate, dup, ddown};
}

Result runChain(const Block &b, bool bf16) {
  const Case &c = b.c;
  MoeBlockWeights w = b.weights(bf16);
  int64_t slots = c.tokens * c.k;
  std::vector<float> logits(c.tokens * c.experts), weights(slots);
  std::vector<int32_t> indices(slots), sourceSlots(slots);
  std::vector<int64_t> counts(c.experts);
  std::vector<float> grouped(slots * c.d), y(grouped.size()), out(b.x.size());
  EXPECT_TRUE(linear(b.x.data(), c.tokens, c.d, w.router, c.experts,
                     logits.data())
                  .ok());
  routerTopK(logits.data(), c.tokens, c.experts, c.k, true, weights.data(),
             indices.data());
  EXPECT_TRUE(dispatch(b.x.data(), indices.data(), c.tokens, c.k, c.experts,
                       c.d, grouped.data(), counts.data(), sourceSlots.data())
                  .ok());
  EXPECT_TRUE(expertMlp(grouped.data(), counts.data(), c.experts, c.d, c.f,
                        w.gate, w.up, w.down, y.data())
                  .ok());
  EXPECT_TRUE(combine(y.data(), weights.data(), sourceSlots.data(), c.tokens,
                      c.k, c.d, out.data())
                  .ok());

  std::vector<float> dy(y.size()), dweights(slots), dgrouped(y.size());
  std::vector<float> dgate(b.gate.size()), dup(b.gate.size()),
      ddown(b.gate.size()), dx(b.x.size()), dxRouter(b.x.size()),
      dlogits(logits.size()), drouter(b.router.size());
  EXPECT_TRUE(combineGrad(y.data(), weights.data(), sourceSlots.data(),
                          c.tokens, c.k, c.d, b.dout.data(), dy.data(),
                          dweights.data())
                  .ok());
  EXPECT_TRUE(expertMlpGrad(grouped.data(), counts.data(), c.experts, c.d, c.f,
                            w.gate, w.up, w.down, dy.data(), dgrouped.data(),
                            dgate.data(), dup.data(), ddown.data())
                  .ok());
  EXPECT_TRUE(dispatchGrad(dgrouped.data(), sourceSlots.data(), c.tokens, c.k,
                           c.d, dx.data())
                  .ok());
  routerGrad(logits.data(), indices.data(), dweights.data(),
             b.dlogitsExtra.data(), c.tokens, c.experts, c.k, true,
             dlogits.data());
  EXPECT_TRUE(linearGradInput(dlogits.data(), c.tokens, c.experts, w.router,
                              c.d, dxRouter.data())
                  .ok());
  add(dx.data(), dxRouter.data(), int64_t(dx.size()), dx.data());
  EXPECT_TRUE(linearGradWeight(dlogits.data(), b.x.data(), c.tokens,
                               c.experts, c.d, drouter.data(), bf16)
                  .ok());
  return {out, logits, dx, drouter, dgate, dup, ddown};
}

const char *kNames[] = {"output", "logits",     "dx",   "drouter",
                        "dgate",  "dup", "ddown"};

class FusedExpertsTest : public ::testing::TestWithParam<Case> {};

TEST_P(FusedExpertsTest, MatchesTheChainOnAnyThreadCount) {
  Block block(GetParam());
  for (bool bf16 : {false, true}) {
    if (bf16 && !bf16MatmulIsNative())
      continue; // bf16 weights are then widened, as fp32 is tested
    Result chain, one, two, three;
    withThreads(2, [&] { chain = runChain(block, bf16); });
    withThreads(1, [&] { one = runFused(block, bf16); });
    withThreads(2, [&] { two = runFused(block, bf16); });
    withThreads(3, [&] { three = runFused(block, bf16); });
    EXPECT_TRUE(one == two && two == three) << "bf16 " << bf16;
    // fp32: the same math summed in another order. bf16: the backward rounds
    // the token's output gradient before the routing weight scales it (the
    // chain rounds the weighted rows), a difference of bf16 rounding.
    for (size_t i = 0; i < chain.size(); ++i)
      EXPECT_LT(relativeError(two[i], std::vector<double>(chain[i].begin(),
                                                          chain[i].end())),
                bf16 ? 1e-2 : 2e-6)
          << kNames[i] << " bf16 " << bf16;
  }
}

// Kept hidden states are the ones the backward would compute (the same
// GEMMs over the same rows): the gradients are the same bits. The output
// differs by rounding where the forward would have streamed an expert
// (keeping, every expert takes the GEMM path).
TEST_P(FusedExpertsTest, KeptHiddenStatesGiveTheRecomputedGradients) {
  Block block(GetParam());
  for (bool bf16 : {false, true}) {
    if (bf16 && !bf16MatmulIsNative())
      continue;
    Result recomputed, kept;
    withThreads(2, [&] { recomputed = runFused(block, bf16); });
    withThreads(2, [&] { kept = runFused(block, bf16, {}, /*keep=*/true); });
    EXPECT_LT(relativeError(kept[0], std::vector<double>(
                                         recomputed[0].begin(),
                                         recomputed[0].end())),
              bf16 ? 1e-5 : 1e-6)
        << "bf16 " << bf16;
    for (size_t i = 1; i < kept.size(); ++i)
      EXPECT_TRUE(kept[i] == recomputed[i]) << kNames[i] << " bf16 " << bf16;
  }
}

// Weights repacked for the GEMM (a launch with constant weights): the
// forward as (expert, row block, chunk) tasks, the down GEMM's expert after
// expert straight into the output, gives the chain's output to rounding and
// the same bits on any thread count. The widths of the cases cut the chunks
// unevenly; expert 0's every row makes several row blocks, and at 1100
// tokens every expert's do.
TEST_P(FusedExpertsTest, PackedWeightsGiveTheChainsOutputOnAnyThreadCount) {
  Block block(GetParam());
  const Case &c = block.c;
  for (bool bf16 : {false, true}) {
    if (bf16 && !bf16MatmulIsNative())
      continue;
    MoeBlockWeights w = block.weights(bf16);
    auto packed = PackedExperts::pack(w);
    ASSERT_TRUE(packed.ok()) << packed.status();
    ASSERT_NE(*packed, nullptr);
    w.packed = packed->get();
    auto forward = [&](int threads) {
      std::vector<float> out(block.x.size()), logits(c.tokens * c.experts);
      withThreads(threads, [&] {
        EXPECT_TRUE(fusedExperts(block.x.data(), c.tokens, w, c.k, true,
                                 out.data(), logits.data(), nullptr, 1, {}, {})
                        .ok());
      });
      return out;
    };
    Result chain;
    withThreads(2, [&] { chain = runChain(block, bf16); });
    std::vector<float> one = forward(1), two = forward(2), three = forward(3);
    EXPECT_TRUE(one == two && two == three) << "bf16 " << bf16;
    EXPECT_LT(relativeError(two, std::vector<double>(chain[0].begin(),
                                                     chain[0].end())),
              bf16 ? 1e-2 : 2e-6)
        << "bf16 " << bf16;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Routings, FusedExpertsTest,
    ::testing::Values(Case{3, 1, 24, 40, 37}, Case{4, 2, 33, 17, 37},
                      Case{8, 2, 64, 96, 130}, Case{8, 1, 33, 40, 9},
                      Case{8, 2, 33, 100, 3},
                      Case{64, 2, 40, 24, 200}, Case{64, 1, 24, 16, 7},
                      Case{8, 2, 260, 300, 150}, Case{4, 2, 24, 40, 1100}),
    [](const auto &info) {
      const Case &c = info.param;
      return "E" + std::to_string(c.experts) + "_top" + std::to_string(c.k) +
             "_d" + std::to_string(c.d) + "_f" + std::to_string(c.f) + "_t" +
             std::to_string(c.tokens);
    });

// Tokens after the last label of their row skip the experts: the block's
// output there is zero, and everything else is the chain's, given the zero
// output gradient that causal attention gives those tokens (their router
// logits' own gradient still reaches dx and the router).
TEST(FusedExpertsSkipTest, TheUnlabelledTailOfEachRowSkipsTheExperts) {
  constexpr int64_t kSeq = 10, kRows = 4, kIgnore = -100;
  Block block(Case{8, 2, 33, 40, kSeq * kRows});
  // Row 0: an unlabelled token in the middle (kept) and a tail of 3; row 1:
  // only the last; row 2: every token; row 3: none.
  std::vector<int32_t> labels(kSeq * kRows, 7);
  labels[4] = labels[7] = labels[8] = labels[9] = kIgnore;
  labels[19] = kIgnore;
  for (int64_t t = 20; t < 30; ++t)
    labels[t] = kIgnore;
  std::vector<bool> skipped(labels.size(), false);
  for (int64_t t : {7, 8, 9, 19})
    skipped[t] = true;
  for (int64_t t = 20; t < 30; ++t)
    skipped[t] = true;
  UnlabelledTail tail{labels.data(), kSeq, kIgnore};
  for (int64_t t = 0; t < kSeq * kRows; ++t)
    if (skipped[t])
      std::fill_n(block.dout.begin() + t * block.c.d, block.c.d, 0.0f);

  Result chain, one, two, three;
  withThreads(2, [&] { chain = runChain(block, false); });
  withThreads(1, [&] { one = runFused(block, false, tail); });
  withThreads(2, [&] { two = runFused(block, false, tail); });
  withThreads(3, [&] { three = runFused(block, false, tail); });
  EXPECT_TRUE(one == two && two == three);
  for (int64_t t = 0; t < kSeq * kRows; ++t)
    if (skipped[t])
      std::fill_n(chain[0].begin() + t * block.c.d, block.c.d, 0.0f);
  for (size_t i = 0; i < chain.size(); ++i)
    EXPECT_LT(relativeError(two[i], std::vector<double>(chain[i].begin(),
                                                        chain[i].end())),
              2e-6)
        << kNames[i];
  // No expert gets a row of theirs.
  ExpertRouting routing;
  ASSERT_TRUE(routeTokens(two[1].data(), kSeq * kRows, 8, 2, true, routing,
                          tail)
                  .ok());
  int64_t kept = std::count(skipped.begin(), skipped.end(), false);
  EXPECT_EQ(std::accumulate(routing.counts.begin(), routing.counts.end(),
                            int64_t(0)),
            2 * kept);
  for (int32_t slot : routing.slots)
    EXPECT_FALSE(skipped[slot / 2]) << "slot " << slot;
  for (int64_t t = 0; t < kSeq * kRows; ++t) {
    bool zero = std::all_of(two[0].begin() + t * block.c.d,
                            two[0].begin() + (t + 1) * block.c.d,
                            [](float v) { return v == 0.0f; });
    EXPECT_EQ(zero, bool(skipped[t])) << "token " << t;
  }
}

TEST(FusedExpertsRoutingTest, ExpertsGetEveryRowOneRowAndNone) {
  Block block(Case{4, 2, 33, 17, 37});
  std::vector<float> logits(37 * 4), weights(37 * 2);
  std::vector<int32_t> indices(37 * 2);
  ASSERT_TRUE(linear(block.x.data(), 37, 33, block.weights(false).router, 4,
                     logits.data())
                  .ok());
  routerTopK(logits.data(), 37, 4, 2, true, weights.data(), indices.data());
  std::vector<int64_t> counts(4, 0);
  for (int32_t e : indices)
    ++counts[e];
  EXPECT_EQ(counts, (std::vector<int64_t>{37, 1, 36, 0}));
}

} // namespace
} // namespace moert::cpu::testing
