//===- LayerKernelsTest.cpp - bias, clamp, sigmoid gate, slice, scale -----===//
//
// The kernels newer model families and fine-grained upcycling add, against
// loops in double and central differences.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Grad.h"
#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moert::cpu::testing {
namespace {

double sigmoidOf(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(AddBiasTest, AddsTheBiasToEveryRow) {
  int64_t rows = 7, width = 37;
  auto x = randomVector(rows * width, 1), bias = randomVector(width, 2);
  std::vector<float> out(rows * width);
  addBias(x.data(), Weight{bias.data(), DType::kF32}, rows, width, out.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j)
      ASSERT_EQ(out[r * width + j], x[r * width + j] + bias[j]);
}

TEST(BiasGradTest, SumsRowsTheSameForAnyThreadCount) {
  int64_t rows = 131, width = 197; // column blocks of 64 and a ragged end
  auto dy = randomVector(rows * width, 3);
  std::vector<float> one(width), three(width);
  withThreads(1, [&] { biasGrad(dy.data(), rows, width, one.data()); });
  withThreads(3, [&] { biasGrad(dy.data(), rows, width, three.data()); });
  EXPECT_EQ(one, three);
  for (int64_t j = 0; j < width; ++j) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r)
      sum += dy[r * width + j];
    EXPECT_NEAR(one[j], sum, 1e-4) << "column " << j;
  }
}

TEST(ClampTest, ClampsAndPassesGradientsInsideTheLimit) {
  int64_t n = 1001;
  auto x = randomVector(n, 4, 3.0f), dy = randomVector(n, 5);
  x[0] = 1.5f; // on the limit: torch passes the gradient there
  std::vector<float> y(n), dx(n);
  clamp(x.data(), n, 1.5f, y.data());
  clampGrad(x.data(), dy.data(), n, 1.5f, dx.data());
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[i], std::min(std::max(x[i], -1.5f), 1.5f));
    ASSERT_EQ(dx[i], std::abs(x[i]) <= 1.5f ? dy[i] : 0.0f) << i;
  }
}

TEST(SigmoidGateTest, ForwardAndFiniteDifferenceGradients) {
  int64_t rows = 5, width = 19;
  auto x = randomVector(rows * width, 6), gate = randomVector(rows, 7, 2.0f);
  auto r = randomVector(rows * width, 8);
  std::vector<float> y(rows * width), dx(rows * width), dgate(rows);
  sigmoidGate(x.data(), gate.data(), rows, width, y.data());
  for (int64_t i = 0; i < rows * width; ++i)
    ASSERT_NEAR(y[i], x[i] * sigmoidOf(gate[i / width]), 1e-6);
  sigmoidGateGrad(x.data(), gate.data(), r.data(), rows, width, dx.data(),
                  dgate.data());
  auto loss = [&](const std::vector<double> &xs, const std::vector<double> &gs) {
    double sum = 0;
    for (int64_t i = 0; i < rows * width; ++i)
      sum += xs[i] * sigmoidOf(gs[i / width]) * r[i];
    return sum;
  };
  auto gates = toDouble(gate);
  auto expectedDx = numericGradient(
      x, [&](const std::vector<double> &xs) { return loss(xs, gates); });
  auto xs = toDouble(x);
  auto expectedDgate = numericGradient(
      gate, [&](const std::vector<double> &gs) { return loss(xs, gs); });
  EXPECT_LE(relativeError(dx, expectedDx), kGradTolerance);
  EXPECT_LE(relativeError(dgate, expectedDgate), kGradTolerance);
}

TEST(SliceScaleTest, TakeRowsOrColumnsAndScale) {
  int64_t rows = 6, cols = 10;
  auto x = randomVector(rows * cols, 9);
  std::vector<float> byRows(2 * cols), byCols(rows * 3), scaled(rows * 3);
  sliceMatrix(x.data(), rows, cols, /*axis=*/0, /*offset=*/4, 2, byRows.data());
  sliceMatrix(x.data(), rows, cols, /*axis=*/1, /*offset=*/7, 3, byCols.data());
  scale(byCols.data(), rows * 3, 0.5, scaled.data());
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_EQ(byRows[r * cols + c], x[(4 + r) * cols + c]);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < 3; ++c) {
      ASSERT_EQ(byCols[r * 3 + c], x[r * cols + 7 + c]);
      ASSERT_EQ(scaled[r * 3 + c], x[r * cols + 7 + c] * 0.5f);
    }
}

} // namespace
} // namespace moert::cpu::testing
