//===- CudaMathTest.cpp - the CUDA kernels' arithmetic, on the CPU --------===//
//
// The per-element and per-row functions the CUDA kernels are made of
// (runtime/cuda/math), compiled for the host and checked against the CPU
// kernels: what a CUDA kernel computes is tested in every build, with or
// without a GPU. Launch shapes are checked here too.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Float16.h"
#include "runtime/checkpoint/Init.h"
#include "runtime/cpu/Grad.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/train/AdamW.h"
#include "runtime/cuda/CheckLaunchShape.h"
#include "runtime/cuda/LaunchShape.h"
#include "runtime/cuda/math/Activations.h"
#include "runtime/cuda/math/AdamWMath.h"
#include "runtime/cuda/math/ExpertTiles.h"
#include "runtime/cuda/math/GradMath.h"
#include "runtime/cuda/math/OnlineSoftmax.h"
#include "runtime/cuda/math/Philox.h"
#include "runtime/cuda/math/RowMath.h"
#include "runtime/cuda/math/Storage.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <tuple>
#include <utility>

namespace moert::cuda_math {
namespace {
using cpu::testing::randomVector;

/// |a - b| <= tolerance * max(1, |b|).
void expectClose(float a, float b, float tolerance) {
  EXPECT_LE(std::fabs(a - b), tolerance * std::max(1.0f, std::fabs(b)))
      << a << " vs " << b;
}

TEST(CudaMathTest, Bf16RoundingIsTheHosts) {
  std::vector<float> values = randomVector(100000, 1, 100.0f);
  for (float special :
       {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::quiet_NaN(),
        std::numeric_limits<float>::denorm_min(),
        std::numeric_limits<float>::max(), 1.00390625f /* a tie */,
        1.01171875f /* a tie rounding up */})
    values.push_back(special);
  for (float value : values) {
    uint16_t ours = floatToBf16(value), host = moert::floatToBf16(value);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(bf16ToFloat(ours)));
      continue;
    }
    EXPECT_EQ(ours, host) << value;
    EXPECT_EQ(bf16ToFloat(ours), moert::bf16ToFloat(host));
  }
}

TEST(CudaMathTest, F16WideningIsTheHostsForEveryValue) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float ours = f16ToFloat(uint16_t(bits)),
          host = moert::f16ToFloat(uint16_t(bits));
    if (std::isnan(host)) {
      EXPECT_TRUE(std::isnan(ours)) << bits;
      continue;
    }
    EXPECT_EQ(std::memcmp(&ours, &host, sizeof(float)), 0) << bits;
  }
}

TEST(CudaMathTest, ActivationsMatchTheCpuKernels) {
  int64_t n = 1001;
  auto x = randomVector(n, 2, 6.0f), up = randomVector(n, 3);
  std::vector<float> silus(n), swiglus(n), clamped(n), gated(n);
  cpu::silu(x.data(), n, silus.data());
  cpu::swiglu(x.data(), up.data(), n, swiglus.data());
  cpu::clamp(x.data(), n, 2.5f, clamped.data());
  cpu::sigmoidGate(up.data(), x.data(), n, 1, gated.data());
  for (int64_t i = 0; i < n; ++i) {
    expectClose(silu(x[i]), silus[i], 1e-6f);
    expectClose(swiglu(x[i], up[i]), swiglus[i], 1e-6f);
    EXPECT_EQ(clampTo(x[i], 2.5f), clamped[i]);
    expectClose(up[i] * sigmoid(x[i]), gated[i], 1e-6f);
  }
}

TEST(CudaMathTest, RmsNormRowsMatchTheCpuKernel) {
  int64_t rows = 4, d = 1000; // not a multiple of any vector width
  double eps = 1e-5;
  auto x = randomVector(rows * d, 4, 3.0f), w = randomVector(d, 5);
  std::vector<float> y(rows * d);
  cpu::rmsNorm(x.data(), {w.data(), DType::kF32}, rows, d, eps, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    double squares = 0;
    for (int64_t i = 0; i < d; ++i)
      squares += double(x[r * d + i]) * x[r * d + i];
    float inverse = rmsInverse(squares, d, eps);
    for (int64_t i = 0; i < d; ++i)
      expectClose(x[r * d + i] * inverse * w[i], y[r * d + i], 1e-6f);
  }
}

TEST(CudaMathTest, RopeMatchesTheCpuKernel) {
  int64_t batch = 2, seq = 5, heads = 3, headDim = 8, half = headDim / 2;
  double theta = 10000.0;
  auto x = randomVector(batch * seq * heads * headDim, 6);
  std::vector<int32_t> positions = {0, 7, 100, 5000, 3, 1, 2, 3, 40000, 9};
  for (bool inverse : {false, true})
    for (bool given : {false, true}) {
      std::vector<float> out(x.size());
      cpu::rope(x.data(), out.data(), batch, seq, heads, headDim, theta,
                given ? positions.data() : nullptr, DType::kI32, inverse);
      for (int64_t t = 0; t < batch * seq; ++t)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < half; ++i) {
            float position = given ? float(positions[t]) : float(t % seq);
            float angle =
                position * ropeInverseFrequency(i, headDim, float(theta));
            int64_t base = (t * heads + h) * headDim;
            float first, second;
            ropeRotate(x[base + i], x[base + i + half], cosf(angle),
                       sinf(angle) * (inverse ? -1.0f : 1.0f), first, second);
            expectClose(first, out[base + i], 1e-6f);
            expectClose(second, out[base + i + half], 1e-6f);
          }
    }
}

TEST(CudaMathTest, RouterTopKIsTheCpuKernelsExactly) {
  for (int experts : {3, 4, 8, 64, 128})
    for (int k : {1, 2, 8}) {
      if (k > experts)
        continue;
      int64_t tokens = 33;
      auto logits = randomVector(tokens * experts, 7 + experts + k, 2.0f);
      // Ties: a token whose logits repeat must pick the lower experts.
      for (int e = 0; e < experts; ++e)
        logits[e] = float(e % 2);
      for (bool normalize : {false, true}) {
        std::vector<float> weights(tokens * k), ours(k), probs(experts);
        std::vector<int32_t> indices(tokens * k), picked(k);
        cpu::routerTopK(logits.data(), tokens, experts, k, normalize,
                        weights.data(), indices.data());
        for (int64_t t = 0; t < tokens; ++t) {
          routerTopKRow(logits.data() + t * experts, experts, k, normalize,
                        probs.data(), ours.data(), picked.data());
          for (int j = 0; j < k; ++j) {
            EXPECT_EQ(picked[j], indices[t * k + j]) << t << " " << j;
            EXPECT_EQ(ours[j], weights[t * k + j]) << t << " " << j;
          }
        }
      }
    }
}

TEST(CudaMathTest, ActivationGradsMatchTheCpuKernels) {
  int64_t n = 777;
  auto x = randomVector(n, 20, 4.0f), up = randomVector(n, 21),
       dy = randomVector(n, 22);
  std::vector<float> dsilu(n), dgate(n), dup(n), dclamp(n);
  cpu::siluGrad(x.data(), dy.data(), n, dsilu.data());
  cpu::swigluGrad(x.data(), up.data(), dy.data(), n, dgate.data(), dup.data());
  cpu::clampGrad(x.data(), dy.data(), n, 2.0f, dclamp.data());
  for (int64_t i = 0; i < n; ++i) {
    expectClose(siluGrad(x[i], dy[i]), dsilu[i], 1e-6f);
    float g, u;
    swigluGrad(x[i], up[i], dy[i], g, u);
    expectClose(g, dgate[i], 1e-6f);
    expectClose(u, dup[i], 1e-6f);
    EXPECT_EQ(clampGrad(x[i], dy[i], 2.0f), dclamp[i]);
  }
}

TEST(CudaMathTest, RouterGradRowsAreTheCpuKernelsExactly) {
  for (int64_t experts : {3, 8, 64})
    for (int64_t k : {1, 2}) {
      int64_t tokens = 9;
      auto logits = randomVector(tokens * experts, 23, 2.0f),
           dweights = randomVector(tokens * k, 24),
           extra = randomVector(tokens * experts, 25);
      std::vector<float> weights(tokens * k);
      std::vector<int32_t> indices(tokens * k);
      cpu::routerTopK(logits.data(), tokens, experts, k, true, weights.data(),
                      indices.data());
      for (bool normalize : {false, true}) {
        std::vector<float> expected(tokens * experts), ours(experts);
        std::vector<double> probs(experts), dprobs(experts);
        cpu::routerGrad(logits.data(), indices.data(), dweights.data(),
                        extra.data(), tokens, experts, k, normalize,
                        expected.data());
        for (int64_t t = 0; t < tokens; ++t) {
          routerGradRow(logits.data() + t * experts, indices.data() + t * k,
                        dweights.data() + t * k, extra.data() + t * experts,
                        experts, k, normalize, probs.data(), dprobs.data(),
                        ours.data());
          for (int64_t e = 0; e < experts; ++e)
            EXPECT_EQ(ours[e], expected[t * experts + e]) << t << " " << e;
        }
      }
    }
}

TEST(CudaMathTest, RandomStreamsAreTheCpusExactly) {
  uint64_t key = moert::keyOf("model.layers.0.mlp.experts.*.w1.weight");
  for (uint64_t seed : {uint64_t(0), uint64_t(1234), uint64_t(1) << 40}) {
    std::vector<float> uniform(2000);
    moert::fillUniform(uniform.data(), int64_t(uniform.size()), seed, key, 7);
    for (uint64_t i = 0; i < 2000; ++i) {
      EXPECT_EQ(standardNormalAt(seed, key, i),
                moert::standardNormalAt(seed, key, i));
      EXPECT_EQ(uniformAt(seed, key, i + 7), uniform[i]);
    }
  }
}

TEST(CudaMathTest, AdamWElementsAreTheTrainersExactly) {
  int64_t n = 999;
  auto master = randomVector(n, 40), grad = randomVector(n, 41, 0.1f);
  train::OptimizerOptions options;
  train::AdamState state;
  std::vector<float> expected = master, ours = master, m(n, 0.0f), v(n, 0.0f);
  for (int64_t step = 1; step <= 3; ++step) {
    double lr = 1e-3 * double(step), clipScale = 0.5;
    train::adamwUpdate(expected.data(), grad.data(), state, n, /*decay=*/true,
                       lr, step, clipScale, options);
    AdamWStep c = train::adamwStep(true, lr, step, clipScale, options);
    for (int64_t i = 0; i < n; ++i)
      ours[i] = adamwElement(ours[i], grad[i], m[i], v[i], c.decayFactor,
                             c.stepSize, c.invBias2Sqrt, c.beta1, c.beta2,
                             c.eps, c.gradScale);
  }
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(ours[i], expected[i]) << i;
    EXPECT_EQ(m[i], state.expAvg[i]) << i;
    EXPECT_EQ(v[i], state.expAvgSq[i]) << i;
  }
}

/// The CUDA attention's algorithm on the host: keys in tiles of 32, each
/// query row's online softmax state carried from tile to tile.
std::vector<float> tiledAttention(const std::vector<float> &q,
                                  const std::vector<float> &k,
                                  const std::vector<float> &v, int64_t batch,
                                  int64_t seq, int64_t heads, int64_t kvHeads,
                                  int64_t headDim, bool causal, float scale) {
  constexpr int64_t kTile = 32;
  std::vector<float> out(q.size());
  int64_t qStride = heads * headDim, kvStride = kvHeads * headDim;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        int64_t kvh = h / (heads / kvHeads);
        const float *query = &q[(b * seq + i) * qStride + h * headDim];
        SoftmaxRow state;
        std::vector<float> accumulated(headDim, 0.0f), scores(kTile);
        for (int64_t first = 0; first < (causal ? i + 1 : seq); first += kTile) {
          float largest = -INFINITY;
          for (int64_t c = 0; c < kTile; ++c) {
            int64_t key = first + c;
            scores[c] = -INFINITY;
            if (key < seq && !(causal && key > i)) {
              float dot = 0;
              for (int64_t d = 0; d < headDim; ++d)
                dot += query[d] * k[(b * seq + key) * kvStride + kvh * headDim + d];
              scores[c] = dot * scale;
            }
            largest = std::max(largest, scores[c]);
          }
          float factor = softmaxRescale(state, largest);
          for (float &a : accumulated)
            a *= factor;
          for (int64_t c = 0; c < kTile; ++c) {
            float weight = softmaxWeight(state, scores[c]);
            for (int64_t d = 0; weight != 0 && d < headDim; ++d)
              accumulated[d] +=
                  weight * v[(b * seq + first + c) * kvStride + kvh * headDim + d];
          }
        }
        for (int64_t d = 0; d < headDim; ++d)
          out[(b * seq + i) * qStride + h * headDim + d] =
              accumulated[d] * softmaxFinish(state);
      }
  return out;
}

TEST(CudaMathTest, TiledOnlineSoftmaxAttentionMatchesTheCpuKernel) {
  for (int64_t headDim : {64, 128})
    for (bool causal : {true, false}) {
      int64_t batch = 2, seq = 45, heads = 4, kvHeads = 2;
      auto q = randomVector(batch * seq * heads * headDim, 8),
           k = randomVector(batch * seq * kvHeads * headDim, 9),
           v = randomVector(batch * seq * kvHeads * headDim, 10);
      float scale = 1.0f / std::sqrt(float(headDim));
      std::vector<float> expected(q.size());
      cpu::attention(q.data(), k.data(), v.data(), batch, seq, heads, kvHeads,
                     headDim, causal, scale, expected.data());
      std::vector<float> ours = tiledAttention(q, k, v, batch, seq, heads,
                                               kvHeads, headDim, causal, scale);
      for (size_t i = 0; i < ours.size(); ++i)
        expectClose(ours[i], expected[i], 2e-5f);
    }
}

// The tiled expert GEMMs' blocks find their tiles from the counts alone:
// every grouped row of every expert in exactly one tile of its own expert,
// tiles in expert order, none past the last, and never more than the bound
// the grid is sized by.
TEST(ExpertTilesTest, TilesCoverEachExpertsRowsOnce) {
  std::mt19937 gen(7);
  for (int64_t experts : {1, 3, 8, 64, 128})
    for (int round = 0; round < 20; ++round) {
      std::vector<int64_t> counts(experts);
      std::uniform_int_distribution<int64_t> rows(0, round % 2 ? 3 : 200);
      int64_t total = 0;
      for (int64_t &count : counts)
        total += count = round == 0 ? 0 : rows(gen);
      std::vector<int64_t> expertOfRow;
      for (int64_t e = 0; e < experts; ++e)
        expertOfRow.insert(expertOfRow.end(), counts[e], e);
      std::vector<int> seen(total, 0);
      int64_t tiles = 0;
      ExpertTile tile;
      while (expertTile(counts.data(), experts, tiles, tile)) {
        ASSERT_GE(tile.rows, 1);
        ASSERT_LE(tile.rows, kExpertTileRows);
        for (int64_t r = tile.firstRow; r < tile.firstRow + tile.rows; ++r) {
          ASSERT_LT(r, total);
          EXPECT_EQ(expertOfRow[r], tile.expert);
          ++seen[r];
        }
        ++tiles;
      }
      for (int64_t r = 0; r < total; ++r)
        EXPECT_EQ(seen[r], 1) << "row " << r;
      EXPECT_LE(tiles, expertTileBound(total, experts));
      // The grid's bound holds for rows counted as the token copies too.
      EXPECT_LE(tiles, expertTileBound(total + 5, experts));
    }
}

// The lanes' registers hold each element of an m16n8k16 operand once, and
// a block's warps each element of its 64 x 64 output once.
TEST(ExpertTilesTest, FragmentsCoverTheirTilesOnce) {
  std::set<std::pair<int, int>> a, b, c, block;
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg)
      for (int half = 0; half < 2; ++half) {
        int row, k;
        mmaAPosition(lane, reg, half, row, k);
        EXPECT_TRUE(row < 16 && k < 16 && a.insert({row, k}).second);
        if (reg < 2) {
          int col;
          mmaBPosition(lane, reg, half, k, col);
          EXPECT_TRUE(k < 16 && col < 8 && b.insert({k, col}).second);
        }
      }
    for (int i = 0; i < 4; ++i) {
      int row, col;
      mmaCPosition(lane, i, row, col);
      EXPECT_TRUE(row < 16 && col < 8 && c.insert({row, col}).second);
    }
    for (int warp = 0; warp < kExpertGemmThreads / 32; ++warp)
      for (int mi = 0; mi < 2; ++mi)
        for (int ni = 0; ni < 4; ++ni)
          for (int i = 0; i < 4; ++i) {
            int row, col;
            tileElement(warp, lane, mi, ni, i, row, col);
            EXPECT_TRUE(row < kExpertTileRows && col < kExpertTileCols &&
                        block.insert({row, col}).second);
          }
  }
  EXPECT_EQ(a.size(), 256u);
  EXPECT_EQ(b.size(), 128u);
  EXPECT_EQ(c.size(), 128u);
  EXPECT_EQ(block.size(), size_t(kExpertTileRows * kExpertTileCols));
}

// The kernel's arithmetic, block by block as the grid runs it (products
// summed in fp32 over bf16 operands): each grouped row's hidden state is
// the SwiGLU of its own expert's gate and up rows, rounded to bf16, and
// the kept pre-activations are the products; nothing else is written.
TEST(ExpertTilesTest, TiledGateUpGivesEachRowItsExpertsSwiglu) {
  const int64_t experts = 5, d = 24, f = 72;
  std::vector<int64_t> counts = {70, 0, 3, 130, 1};
  int64_t total = 204, bound = total + 11; // the slots bound the rows
  auto bf16Vector = [](size_t n, unsigned seed) {
    std::vector<uint16_t> v(n);
    std::vector<float> values = randomVector(n, seed, 1.0f);
    for (size_t i = 0; i < n; ++i)
      v[i] = floatToBf16(values[i]);
    return v;
  };
  std::vector<uint16_t> x = bf16Vector(bound * d, 1),
                        gate = bf16Vector(experts * f * d, 2),
                        up = bf16Vector(experts * f * d, 3);
  std::vector<uint16_t> hidden(bound * f, 0xffff);
  std::vector<float> keptGate(bound * f, -1.0f), keptUp(bound * f, -1.0f);
  auto dot = [&](const uint16_t *a, const uint16_t *w) {
    float sum = 0;
    for (int64_t j = 0; j < d; ++j)
      sum += bf16ToFloat(a[j]) * bf16ToFloat(w[j]);
    return sum;
  };
  int64_t tilesY = (f + kExpertTileCols - 1) / kExpertTileCols;
  for (int64_t bx = 0; bx < expertTileBound(bound, experts); ++bx) {
    ExpertTile tile;
    if (!expertTile(counts.data(), experts, bx, tile))
      continue;
    for (int64_t by = 0; by < tilesY; ++by)
      for (int warp = 0; warp < 4; ++warp)
        for (int lane = 0; lane < 32; ++lane)
          for (int mi = 0; mi < 2; ++mi)
            for (int ni = 0; ni < 4; ++ni)
              for (int i = 0; i < 4; ++i) {
                int row, col;
                tileElement(warp, lane, mi, ni, i, row, col);
                int64_t neuron = by * kExpertTileCols + col;
                if (row >= tile.rows || neuron >= f)
                  continue;
                const uint16_t *in = &x[(tile.firstRow + row) * d];
                size_t w = (tile.expert * f + neuron) * d;
                storeGateUp(dot(in, &gate[w]), dot(in, &up[w]),
                            (tile.firstRow + row) * f + neuron, hidden.data(),
                            keptGate.data(), keptUp.data());
              }
  }
  for (int64_t e = 0, first = 0; e < experts; first += counts[e], ++e)
    for (int64_t r = first; r < first + counts[e]; ++r)
      for (int64_t n = 0; n < f; ++n) {
        size_t w = (e * f + n) * d;
        float g = dot(&x[r * d], &gate[w]), u = dot(&x[r * d], &up[w]);
        ASSERT_EQ(keptGate[r * f + n], g) << "row " << r << " neuron " << n;
        ASSERT_EQ(keptUp[r * f + n], u);
        ASSERT_EQ(hidden[r * f + n], floatToBf16(swiglu(g, u)));
      }
  for (int64_t i = total * f; i < bound * f; ++i)
    ASSERT_EQ(hidden[i], 0xffff) << "past the grouped rows";
}

TEST(LaunchShapeTest, ElementwiseGridsStayValidForAnySize) {
  cuda::DeviceLimits limits;
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(257), int64_t(1) << 40}) {
    cuda::LaunchShape shape = cuda::elementwiseShape(n);
    EXPECT_TRUE(cuda::checkLaunchShape(shape, "k", limits).ok()) << n;
    EXPECT_GE(shape.gridX * shape.threads, std::min<int64_t>(n, 256 * 65536));
  }
}

TEST(LaunchShapeTest, OversizedShapesAreRefusedNamingTheKernel) {
  cuda::DeviceLimits limits;
  cuda::LaunchShape rows = cuda::rowShape(limits.maxGridX + 1, 256);
  absl::Status status = cuda::checkLaunchShape(rows, "cuda.rms_norm", limits);
  EXPECT_EQ(status.message(),
            "cuda.rms_norm: grid x 2147483648 exceeds the device's limit of "
            "2147483647");
  cuda::LaunchShape shared = cuda::rowShape(1, 128, 300000);
  EXPECT_FALSE(cuda::checkLaunchShape(shared, "k", limits).ok());
  cuda::LaunchShape threads = cuda::rowShape(1, 2048);
  EXPECT_FALSE(cuda::checkLaunchShape(threads, "k", limits).ok());
}

// The experts' tiled GEMMs fit the device at the benchmark's largest
// shapes (16384 tokens of top-8 over 128 experts; Mixtral's 14336 neurons).
TEST(LaunchShapeTest, ExpertGemmGridsFitTheLargestBatches) {
  cuda::DeviceLimits limits;
  for (auto [rows, experts, width] :
       {std::make_tuple(int64_t(16384 * 8), int64_t(128), int64_t(768)),
        std::make_tuple(int64_t(16384 * 2), int64_t(8), int64_t(14336)),
        std::make_tuple(int64_t(0), int64_t(8), int64_t(8))}) {
    cuda::LaunchShape shape = cuda::expertGemmShape(rows, experts, width);
    EXPECT_TRUE(cuda::checkLaunchShape(shape, "cuda.expert_gate_up", limits)
                    .ok());
    EXPECT_GE(shape.gridX * kExpertTileRows, rows);
    EXPECT_GE(shape.gridY * kExpertTileCols, width);
  }
}

} // namespace
} // namespace moert::cuda_math
