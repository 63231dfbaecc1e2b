//===- NormRopeTest.cpp - RMSNorm and rotary embedding --------------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

namespace moert::cpu::testing {
namespace {

std::vector<double> naiveRmsNorm(const std::vector<float> &x,
                                 const std::vector<float> &w, int64_t rows,
                                 int64_t d, double eps) {
  std::vector<double> y(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    double meanSquare = 0;
    for (int64_t i = 0; i < d; ++i)
      meanSquare += double(x[r * d + i]) * x[r * d + i] / d;
    for (int64_t i = 0; i < d; ++i)
      y[r * d + i] = x[r * d + i] / std::sqrt(meanSquare + eps) * w[i];
  }
  return y;
}

TEST(RmsNormTest, F32AndBf16Weights) {
  int64_t rows = 5, d = 13;
  double eps = 1e-6;
  auto x = randomVector(rows * d, 1, 4.0f), w = randomVector(d, 2);
  std::vector<float> y(rows * d);
  rmsNorm(x.data(), {w.data(), DType::kF32}, rows, d, eps, y.data());
  EXPECT_LE(relativeError(y, naiveRmsNorm(x, w, rows, d, eps)), 1e-5);

  std::vector<uint16_t> bits = toBf16(w);
  rmsNorm(x.data(), {bits.data(), DType::kBF16}, rows, d, eps, y.data());
  EXPECT_LE(relativeError(y, naiveRmsNorm(x, roundedToBf16(w), rows, d, eps)),
            1e-5);
}

/// Hugging Face's fp32 angles, rotated in double: out[i] = x[i] cos -
/// x[i+h/2] sin, out[i+h/2] = x[i+h/2] cos + x[i] sin.
std::vector<double> naiveRope(const std::vector<float> &x, int64_t batch,
                              int64_t seq, int64_t heads, int64_t headDim,
                              double theta,
                              const std::vector<int64_t> &positions) {
  std::vector<double> out(x.begin(), x.end());
  int64_t half = headDim / 2;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          float inverseFrequency =
              1.0f / std::pow(float(theta), float(2 * i) / float(headDim));
          float position =
              positions.empty() ? float(s) : float(positions[b * seq + s]);
          double angle = position * inverseFrequency;
          int64_t base = ((b * seq + s) * heads + h) * headDim;
          double first = x[base + i], second = x[base + i + half];
          out[base + i] = first * std::cos(angle) - second * std::sin(angle);
          out[base + i + half] =
              second * std::cos(angle) + first * std::sin(angle);
        }
  return out;
}

TEST(RopeTest, DefaultPositions) {
  int64_t batch = 2, seq = 13, heads = 6, headDim = 12;
  auto x = randomVector(batch * seq * heads * headDim, 3);
  std::vector<float> rotated = x;
  rope(rotated.data(), rotated.data(), batch, seq, heads, headDim, 10000.0,
       nullptr, DType::kI64);
  EXPECT_LE(relativeError(
                rotated, naiveRope(x, batch, seq, heads, headDim, 10000.0, {})),
            1e-5);
}

TEST(RopeTest, ExplicitInt64AndInt32Positions) {
  int64_t batch = 2, seq = 3, heads = 2, headDim = 12;
  double theta = 500000.0;
  std::vector<int64_t> positions = {7, 0, 4095, 100000, 1, 31};
  std::vector<int32_t> narrow(positions.begin(), positions.end());
  auto x = randomVector(batch * seq * heads * headDim, 4);
  auto expected = naiveRope(x, batch, seq, heads, headDim, theta, positions);
  std::vector<float> wide = x, fromNarrow = x;
  rope(wide.data(), wide.data(), batch, seq, heads, headDim, theta,
       positions.data(), DType::kI64);
  rope(fromNarrow.data(), fromNarrow.data(), batch, seq, heads, headDim, theta,
       narrow.data(), DType::kI32);
  EXPECT_LE(relativeError(wide, expected), 1e-5);
  EXPECT_EQ(wide, fromNarrow);
}

TEST(RopeTest, OutOfPlaceLeavesTheInputAndMatchesInPlace) {
  int64_t batch = 2, seq = 5, heads = 3, headDim = 8;
  auto x = randomVector(batch * seq * heads * headDim, 5);
  std::vector<float> input = x, out(x.size(), -1.0f), inPlace = x;
  rope(input.data(), out.data(), batch, seq, heads, headDim, 10000.0, nullptr,
       DType::kI64);
  rope(inPlace.data(), inPlace.data(), batch, seq, heads, headDim, 10000.0,
       nullptr, DType::kI64);
  EXPECT_EQ(input, x);
  EXPECT_EQ(out, inPlace);
}

TEST(RopeTest, TheKeptTableFollowsShapeAndTheta) {
  // Each call's default-position table is kept until the shape or theta
  // changes: alternating shapes must each get their own angles.
  int64_t batch = 1, heads = 2;
  struct Case {
    int64_t seq, headDim;
    double theta;
  };
  for (int round = 0; round < 2; ++round)
    for (Case c : {Case{5, 8, 10000.0}, Case{7, 8, 10000.0},
                   Case{7, 12, 10000.0}, Case{7, 12, 500.0}}) {
      auto x = randomVector(batch * c.seq * heads * c.headDim, 6);
      std::vector<float> out(x.size());
      rope(x.data(), out.data(), batch, c.seq, heads, c.headDim, c.theta,
           nullptr, DType::kI64);
      EXPECT_LE(relativeError(out, naiveRope(x, batch, c.seq, heads, c.headDim,
                                             c.theta, {})),
                1e-5)
          << c.seq << " " << c.headDim << " " << c.theta;
    }
}

// Results stored as bf16 (runtime/artifact/Bf16Activations.h) are the fp32
// results rounded, over more rows than one task's tile and a ragged last one.
TEST(RmsNormTest, Bf16ResultIsTheFp32ResultRounded) {
  int64_t rows = 37, d = 72;
  auto x = randomVector(rows * d, 51), w = randomVector(d, 52);
  std::vector<float> y(rows * d);
  rmsNorm(x.data(), {w.data(), DType::kF32}, rows, d, 1e-6, y.data());
  std::vector<uint16_t> stored(rows * d);
  rmsNormToBf16(x.data(), {w.data(), DType::kF32}, rows, d, 1e-6,
                stored.data());
  EXPECT_EQ(stored, toBf16(y));
}

TEST(RopeTest, Bf16ResultIsTheFp32ResultRounded) {
  int64_t batch = 2, seq = 21, heads = 3, headDim = 8;
  auto x = randomVector(batch * seq * heads * headDim, 53);
  std::vector<int32_t> positions(batch * seq);
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = int32_t(3 * i % 17);
  for (bool inverse : {false, true})
    for (const void *at : {static_cast<const void *>(nullptr),
                           static_cast<const void *>(positions.data())}) {
      std::vector<float> y(x.size());
      std::vector<uint16_t> stored(x.size());
      rope(x.data(), y.data(), batch, seq, heads, headDim, 10000.0, at,
           DType::kI32, inverse);
      ropeToBf16(x.data(), stored.data(), batch, seq, heads, headDim, 10000.0,
                 at, DType::kI32, inverse);
      EXPECT_EQ(stored, toBf16(y)) << "inverse " << inverse;
    }
}

} // namespace
} // namespace moert::cpu::testing
