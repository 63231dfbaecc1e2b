//===- LinearTest.cpp - oneDNN GEMMs against a double reference -----------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

#include <tuple>

namespace moert::cpu::testing {
namespace {

using Shape = std::tuple<int64_t, int64_t, int64_t>; // m, k, n

TEST(LinearTest, F32MatchesReference) {
  for (auto [m, k, n] : {Shape{1, 7, 5}, Shape{13, 33, 17}, Shape{1, 1, 1},
                         Shape{64, 101, 96}, Shape{3, 512, 1}}) {
    auto x = randomVector(m * k, 1), w = randomVector(n * k, 2);
    std::vector<float> y(m * n);
    ASSERT_TRUE(
        linear(x.data(), m, k, {w.data(), DType::kF32}, n, y.data()).ok());
    EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-5)
        << m << "x" << k << "x" << n;
  }
}

TEST(LinearTest, CachedPrimitiveServesNewOperands) {
  int64_t m = 5, k = 9, n = 11;
  for (unsigned seed = 3; seed < 6; ++seed) {
    auto x = randomVector(m * k, seed), w = randomVector(n * k, seed + 10);
    std::vector<float> y(m * n);
    ASSERT_TRUE(
        linear(x.data(), m, k, {w.data(), DType::kF32}, n, y.data()).ok());
    EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-5);
  }
}

TEST(LinearTest, Bf16WeightsAccumulateInFp32) {
  for (auto [m, k, n] : {Shape{1, 7, 5}, Shape{19, 45, 23}, Shape{33, 130, 9}}) {
    auto x = randomVector(m * k, 4), w = randomVector(n * k, 5);
    std::vector<uint16_t> bits = toBf16(w);
    std::vector<float> y(m * n);
    ASSERT_TRUE(
        linear(x.data(), m, k, {bits.data(), DType::kBF16}, n, y.data()).ok());
    // Products of bf16 values are exact in fp32, so against the same rounded
    // operands only the accumulation order differs. The fp32 fallback does
    // not round x.
    std::vector<float> xUsed = bf16MatmulIsNative() ? roundedToBf16(x) : x;
    auto exact = naiveLinear(xUsed, roundedToBf16(w), m, k, n);
    EXPECT_LE(relativeError(y, exact), 1e-5) << m << "x" << k << "x" << n;
    // And against fp32 math, bf16 rounding stays within 1e-2.
    EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-2);
  }
}

TEST(LinearTest, PreconvertedBf16Input) {
  if (!bf16MatmulIsNative())
    GTEST_SKIP() << "linearBf16 needs a native bf16 GEMM";
  int64_t m = 7, k = 21, n = 13;
  auto x = roundedToBf16(randomVector(m * k, 6));
  auto w = roundedToBf16(randomVector(n * k, 7));
  std::vector<uint16_t> xBits = toBf16(x), wBits = toBf16(w);
  std::vector<float> y(m * n);
  ASSERT_TRUE(linearBf16(xBits.data(), m, k, {wBits.data(), DType::kBF16}, n,
                         y.data())
                  .ok());
  EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-5);
}

// A bf16 model's activations that only linear layers read are stored as bf16
// (runtime/artifact/Bf16Activations.h): a bf16 input gives the bits of the
// fp32 one it rounds, a bf16 result is the fp32 result rounded, on both the
// streaming (up to 8 rows) and the GEMM path.
TEST(LinearTest, StoredBf16ActivationsGiveTheFp32PathsBits) {
  if (!bf16MatmulIsNative())
    GTEST_SKIP() << "bf16 activations are read as they are with native bf16 GEMMs";
  for (auto [m, k, n] : {Shape{3, 37, 131}, Shape{19, 45, 23}, Shape{70, 130, 9}}) {
    auto x = randomVector(m * k, 11), w = randomVector(n * k, 12);
    std::vector<uint16_t> wBits = toBf16(w), xBits = toBf16(x);
    Weight weight{wBits.data(), DType::kBF16};
    std::vector<float> expected(m * n), y(m * n);
    ASSERT_TRUE(linear(x.data(), m, k, weight, n, expected.data()).ok());
    ASSERT_TRUE(linearStored(xBits.data(), true, m, k, weight, n, y.data(), false).ok());
    EXPECT_EQ(y, expected) << "bf16 input " << m << "x" << k << "x" << n;
    std::vector<uint16_t> yBits(m * n);
    ASSERT_TRUE(linearStored(x.data(), false, m, k, weight, n, yBits.data(), true).ok());
    EXPECT_EQ(yBits, toBf16(expected)) << "bf16 result " << m << "x" << k << "x" << n;
  }
}

// 1 to 8 rows stream the weights instead of calling a GEMM; odd widths and
// output counts take the kernel's tails.
TEST(LinearTest, FewRowsStreamTheWeights) {
  for (int64_t m = 1; m <= 9; ++m)
    for (auto [k, n] : {std::pair<int64_t, int64_t>{512, 131}, {37, 5}, {16, 1}}) {
      EXPECT_EQ(streamsLinear({nullptr, DType::kF32}, m), m <= 8);
      auto x = randomVector(m * k, 8), w = randomVector(n * k, 9);
      std::vector<float> y(m * n);
      ASSERT_TRUE(
          linear(x.data(), m, k, {w.data(), DType::kF32}, n, y.data()).ok());
      EXPECT_LE(relativeError(y, naiveLinear(x, w, m, k, n)), 1e-5)
          << m << "x" << k << "x" << n;
      std::vector<uint16_t> bits = toBf16(w);
      ASSERT_TRUE(
          linear(x.data(), m, k, {bits.data(), DType::kBF16}, n, y.data()).ok());
      std::vector<float> xUsed = bf16MatmulIsNative() ? roundedToBf16(x) : x;
      EXPECT_LE(relativeError(y, naiveLinear(xUsed, roundedToBf16(w), m, k, n)),
                1e-5)
          << "bf16 " << m << "x" << k << "x" << n;
    }
}

TEST(LinearTest, EmptyProductsWriteNothing) {
  std::vector<float> w(12, 1.0f), y(3, -1.0f);
  EXPECT_TRUE(linear(nullptr, 0, 4, {w.data(), DType::kF32}, 3, y.data()).ok());
  EXPECT_EQ(y, std::vector<float>(3, -1.0f));
}

} // namespace
} // namespace moert::cpu::testing
