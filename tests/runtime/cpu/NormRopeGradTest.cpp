//===- NormRopeGradTest.cpp - backward of RMSNorm and rotary embedding ----===//

#include "runtime/cpu/Grad.h"
#include "tests/runtime/cpu/GradTestUtil.h"

#include <gtest/gtest.h>

#include <tuple>

namespace moert::cpu::testing {
namespace {

std::vector<double> rmsNormOf(const std::vector<double> &x,
                              const std::vector<double> &w, int64_t rows,
                              int64_t d, double eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double squares = 0;
    for (int64_t i = 0; i < d; ++i)
      squares += x[r * d + i] * x[r * d + i];
    double inverse = 1.0 / std::sqrt(squares / d + eps);
    for (int64_t i = 0; i < d; ++i)
      y[r * d + i] = x[r * d + i] * inverse * w[i];
  }
  return y;
}

struct NormGrads {
  std::vector<float> dx, dw;
};

NormGrads normGrads(const std::vector<float> &x, Weight w,
                    const std::vector<float> &dy, int64_t rows, int64_t d,
                    double eps) {
  NormGrads grads{std::vector<float>(rows * d), std::vector<float>(d)};
  rmsNormGrad(x.data(), w, dy.data(), rows, d, eps, grads.dx.data(),
              grads.dw.data());
  return grads;
}

TEST(RmsNormGradTest, MatchesFiniteDifferences) {
  // With d = 1 and a tiny eps, y = sign(x) w: the gradient is all
  // cancellation, so that width gets a large eps only.
  using Case = std::tuple<int64_t, int64_t, double>;
  for (const Case &values : {Case{5, 13, 1e-6}, Case{5, 13, 0.5},
                             Case{3, 130, 1e-6}, Case{4, 1, 0.5}}) {
    int64_t rows, d;
    double eps;
    std::tie(rows, d, eps) = values;
    auto x = randomVector(rows * d, 1), w = randomVector(d, 2);
    auto r = randomVector(rows * d, 3);
    NormGrads ours = normGrads(x, {w.data(), DType::kF32}, r, rows, d, eps);
    auto dx = numericGradient(x, [&](const std::vector<double> &xs) {
      return weightedSum(rmsNormOf(xs, toDouble(w), rows, d, eps), r);
    });
    auto dw = numericGradient(w, [&](const std::vector<double> &ws) {
      return weightedSum(rmsNormOf(toDouble(x), ws, rows, d, eps), r);
    });
    EXPECT_LE(relativeError(ours.dx, dx), kGradTolerance)
        << rows << "x" << d << " eps " << eps;
    EXPECT_LE(relativeError(ours.dw, dw), kGradTolerance)
        << rows << "x" << d << " eps " << eps;
  }
}

TEST(RmsNormGradTest, Bf16WeightIsReadAsItsValue) {
  int64_t rows = 4, d = 37;
  auto x = randomVector(rows * d, 4), w = randomVector(d, 5);
  auto dy = randomVector(rows * d, 6);
  std::vector<uint16_t> bits = toBf16(w);
  auto rounded = roundedToBf16(w);
  NormGrads ref = normGrads(x, {rounded.data(), DType::kF32}, dy, rows, d, 1e-5);
  NormGrads ours = normGrads(x, {bits.data(), DType::kBF16}, dy, rows, d, 1e-5);
  EXPECT_EQ(ours.dx, ref.dx);
  EXPECT_EQ(ours.dw, ref.dw);
}

TEST(RmsNormGradTest, SameResultOnOneAndTwoThreads) {
  int64_t rows = 301, d = 200;
  auto x = randomVector(rows * d, 7), w = randomVector(d, 8);
  auto dy = randomVector(rows * d, 9);
  NormGrads one, two;
  withThreads(1, [&] {
    one = normGrads(x, {w.data(), DType::kF32}, dy, rows, d, 1e-5);
  });
  withThreads(2, [&] {
    two = normGrads(x, {w.data(), DType::kF32}, dy, rows, d, 1e-5);
  });
  EXPECT_EQ(one.dx, two.dx);
  EXPECT_EQ(one.dw, two.dw);
}

/// HF rotate_half rotary embedding, angles in double.
std::vector<double> ropeOf(std::vector<double> x, int64_t batch, int64_t seq,
                           int64_t heads, int64_t headDim, double theta,
                           const std::vector<int64_t> &positions) {
  int64_t half = headDim / 2;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      double position =
          positions.empty() ? double(s) : double(positions[b * seq + s]);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          double angle = position / std::pow(theta, double(2 * i) / headDim);
          double *head = x.data() + ((b * seq + s) * heads + h) * headDim;
          double first = head[i], second = head[i + half];
          head[i] = first * std::cos(angle) - second * std::sin(angle);
          head[i + half] = second * std::cos(angle) + first * std::sin(angle);
        }
    }
  return x;
}

TEST(RopeGradTest, MatchesFiniteDifferences) {
  int64_t batch = 2, seq = 5, heads = 3, headDim = 6;
  double theta = 10000;
  std::vector<int64_t> positions = {3, 1, 4, 1, 5, 9, 2, 6, 53, 35};
  std::vector<int32_t> positions32(positions.begin(), positions.end());
  auto x = randomVector(batch * seq * heads * headDim, 1);
  auto r = randomVector(x.size(), 2);
  for (int mode = 0; mode < 3; ++mode) {
    std::vector<int64_t> used = mode == 0 ? std::vector<int64_t>{} : positions;
    const void *data = mode == 0   ? nullptr
                       : mode == 1 ? static_cast<const void *>(positions.data())
                                   : positions32.data();
    DType type = mode == 2 ? DType::kI32 : DType::kI64;
    std::vector<float> ours = r;
    ropeGrad(ours.data(), batch, seq, heads, headDim, theta, data, type);
    auto dx = numericGradient(x, [&](const std::vector<double> &xs) {
      return weightedSum(
          ropeOf(xs, batch, seq, heads, headDim, theta, used), r);
    });
    // fp32 angles (as HF computes them) differ from these double ones by
    // about position * 1e-7.
    EXPECT_LE(relativeError(ours, dx), kGradTolerance) << "mode " << mode;
  }
}

} // namespace
} // namespace moert::cpu::testing
