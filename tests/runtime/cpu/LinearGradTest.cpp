//===- LinearGradTest.cpp - backward of y = x w^T -------------------------===//

#include "runtime/cpu/Grad.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <tuple>

namespace moert::cpu::testing {
namespace {

using Shape = std::tuple<int64_t, int64_t, int64_t>; // m, k, n

std::vector<float> gradInput(const std::vector<float> &dy, int64_t m,
                             int64_t n, Weight w, int64_t k) {
  std::vector<float> dx(m * k, -1.0f);
  EXPECT_TRUE(linearGradInput(dy.data(), m, n, w, k, dx.data()).ok());
  return dx;
}

std::vector<float> gradWeight(const std::vector<float> &dy,
                              const std::vector<float> &x, int64_t m,
                              int64_t n, int64_t k, bool bf16 = false) {
  std::vector<float> dw(n * k, -1.0f);
  EXPECT_TRUE(
      linearGradWeight(dy.data(), x.data(), m, n, k, dw.data(), bf16).ok());
  return dw;
}

TEST(LinearGradTest, MatchesFiniteDifferences) {
  for (const Shape &values : {Shape{5, 7, 3}, Shape{1, 1, 1}, Shape{13, 33, 17},
                         Shape{2, 65, 9}}) {
    int64_t m, k, n;
    std::tie(m, k, n) = values;
    auto x = randomVector(m * k, 1), w = randomVector(n * k, 2);
    auto r = randomVector(m * n, 3);
    auto dx = numericGradient(x, [&](const std::vector<double> &xs) {
      return weightedSum(naiveLinear(xs, toDouble(w), m, k, n), r);
    });
    auto dw = numericGradient(w, [&](const std::vector<double> &ws) {
      return weightedSum(naiveLinear(toDouble(x), ws, m, k, n), r);
    });
    EXPECT_LE(relativeError(gradInput(r, m, n, {w.data(), DType::kF32}, k), dx),
              kGradTolerance)
        << m << "x" << k << "x" << n;
    EXPECT_LE(relativeError(gradWeight(r, x, m, n, k), dw), kGradTolerance)
        << m << "x" << k << "x" << n;
  }
}

TEST(LinearGradTest, NoRowsGiveZeroWeightGradient) {
  std::vector<float> dw = gradWeight({}, {}, 0, 3, 4);
  EXPECT_EQ(dw, std::vector<float>(12, 0.0f));
}

TEST(LinearGradTest, Bf16AndF16Weights) {
  int64_t m = 19, k = 45, n = 23;
  auto w = randomVector(n * k, 5), dy = randomVector(m * n, 6);
  // bf16: dy is rounded to bf16 too when the GEMM is native.
  std::vector<uint16_t> bf16 = toBf16(w);
  auto wBf16 = roundedToBf16(w);
  auto ref = gradInput(dy, m, n, {wBf16.data(), DType::kF32}, k);
  auto ours = gradInput(dy, m, n, {bf16.data(), DType::kBF16}, k);
  EXPECT_LE(relativeError(ours, toDouble(ref)),
            bf16MatmulIsNative() ? 1e-2 : 1e-5);
  // f16 always widens the weight to fp32.
  std::vector<uint16_t> f16(w.size());
  std::vector<float> wF16(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    f16[i] = floatToF16(w[i]);
    wF16[i] = f16ToFloat(f16[i]);
  }
  ref = gradInput(dy, m, n, {wF16.data(), DType::kF32}, k);
  ours = gradInput(dy, m, n, {f16.data(), DType::kF16}, k);
  EXPECT_LE(relativeError(ours, toDouble(ref)), 1e-6);
}

TEST(LinearGradTest, Bf16WeightGradientIsTheGemmOfRoundedOperands) {
  int64_t m = 300, k = 45, n = 23;
  auto x = randomVector(m * k, 10), dy = randomVector(m * n, 11);
  auto ours = gradWeight(dy, x, m, n, k, /*bf16=*/true);
  // Products of bf16 values are exact in fp32: only the order of the fp32
  // sums differs from the fp32 GEMM of the rounded operands.
  auto ref = gradWeight(roundedToBf16(dy), roundedToBf16(x), m, n, k);
  if (bf16MatmulIsNative())
    EXPECT_LE(relativeError(ours, toDouble(ref)), 1e-5);
  else // the fp32 GEMM of the operands as given
    EXPECT_EQ(ours, gradWeight(dy, x, m, n, k));
  // Rounding moved the result, but not far.
  EXPECT_LE(relativeError(ours, toDouble(gradWeight(dy, x, m, n, k))), 1e-2);
}

TEST(LinearGradTest, SameResultOnOneAndTwoThreads) {
  // Includes a long reduction (m) over a small output, where a GEMM might be
  // tempted to split the sum across threads.
  // The last is a weight gradient large enough to run on both threads.
  for (const Shape &values : {Shape{4096, 16, 8}, Shape{300, 128, 256},
                         Shape{1024, 256, 256}, Shape{37, 1000, 3},
                         Shape{2048, 256, 512}}) {
    int64_t m, k, n;
    std::tie(m, k, n) = values;
    auto x = randomVector(m * k, 7), w = randomVector(n * k, 8);
    auto dy = randomVector(m * n, 9);
    std::vector<uint16_t> bf16 = toBf16(w);
    std::vector<float> dx1, dx2, dw1, dw2, db1, db2, dwb1, dwb2;
    withThreads(1, [&] {
      dx1 = gradInput(dy, m, n, {w.data(), DType::kF32}, k);
      db1 = gradInput(dy, m, n, {bf16.data(), DType::kBF16}, k);
      dw1 = gradWeight(dy, x, m, n, k);
      dwb1 = gradWeight(dy, x, m, n, k, /*bf16=*/true);
    });
    withThreads(2, [&] {
      dx2 = gradInput(dy, m, n, {w.data(), DType::kF32}, k);
      db2 = gradInput(dy, m, n, {bf16.data(), DType::kBF16}, k);
      dw2 = gradWeight(dy, x, m, n, k);
      dwb2 = gradWeight(dy, x, m, n, k, /*bf16=*/true);
    });
    EXPECT_EQ(dx1, dx2) << m << "x" << k << "x" << n;
    EXPECT_EQ(db1, db2) << m << "x" << k << "x" << n;
    EXPECT_EQ(dw1, dw2) << m << "x" << k << "x" << n;
    EXPECT_EQ(dwb1, dwb2) << m << "x" << k << "x" << n;
  }
}

} // namespace
} // namespace moert::cpu::testing
