//===- CachedAttentionTest.cpp - attention over the KV caches -------------===//
//
// The cached attention against full causal attention (cpu::attention, itself
// checked against a double reference in AttentionTest.cpp) at every
// position: rows written into the caches in chunks, then queried all at
// once, in chunks, and one position at a time as decoding does.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

namespace moert::cpu::testing {
namespace {

constexpr int64_t kBatch = 2, kSeq = 11, kCapacity = 16, kHeads = 6,
                  kKvHeads = 2, kHeadDim = 12;
constexpr int64_t kWidth = kHeads * kHeadDim, kKvWidth = kKvHeads * kHeadDim;

/// Rows [first, first + count) of every sequence of `all` ([B, kSeq, W]).
std::vector<float> rowsOf(const std::vector<float> &all, int64_t width,
                          int64_t first, int64_t count) {
  std::vector<float> rows(kBatch * count * width, 0.0f);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = 0; t < count && first + t < kSeq; ++t)
      std::copy_n(all.begin() + (b * kSeq + first + t) * width, width,
                  rows.begin() + (b * count + t) * width);
  return rows;
}

/// Positions first.. of `count` rows; past kSeq, -1 (padding).
std::vector<int32_t> positionsOf(int64_t first, int64_t count) {
  std::vector<int32_t> positions(kBatch * count);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = 0; t < count; ++t)
      positions[b * count + t] = first + t < kSeq ? int32_t(first + t) : -1;
  return positions;
}

class CachedAttentionTest : public ::testing::Test {
protected:
  void SetUp() override {
    q = randomVector(kBatch * kSeq * kWidth, 1);
    k = randomVector(kBatch * kSeq * kKvWidth, 2);
    v = randomVector(kBatch * kSeq * kKvWidth, 3);
    full.resize(q.size());
    attention(q.data(), k.data(), v.data(), kBatch, kSeq, kHeads, kKvHeads,
              kHeadDim, /*causal=*/true, scale, full.data());
    keys.assign(kBatch * kCapacity * kKvWidth, 0.0f);
    values = keys;
  }

  /// Writes rows [first, first + count) of k and v into the caches.
  void write(int64_t first, int64_t count) {
    std::vector<int32_t> positions = positionsOf(first, count);
    ASSERT_TRUE(cacheWrite(rowsOf(k, kKvWidth, first, count).data(),
                           positions.data(), kBatch, count, kKvWidth,
                           kCapacity, keys.data())
                    .ok());
    ASSERT_TRUE(cacheWrite(rowsOf(v, kKvWidth, first, count).data(),
                           positions.data(), kBatch, count, kKvWidth,
                           kCapacity, values.data())
                    .ok());
  }

  /// The cached attention of query rows [first, first + count).
  std::vector<float> attend(int64_t first, int64_t count, bool bf16 = false) {
    std::vector<int32_t> positions = positionsOf(first, count);
    std::vector<float> out(kBatch * count * kWidth, -1.0f);
    EXPECT_TRUE(cachedAttention(rowsOf(q, kWidth, first, count).data(),
                                positions.data(), keys.data(), values.data(),
                                kBatch, count, kCapacity, kHeads, kKvHeads,
                                kHeadDim, scale, bf16, out.data())
                    .ok());
    return out;
  }

  /// Compares rows [first, first + count) (those below kSeq) with `full`.
  void expectFullRows(const std::vector<float> &out, int64_t first,
                      int64_t count, double tolerance = 1e-5) {
    std::vector<float> ours;
    std::vector<double> ref;
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t t = 0; t < count && first + t < kSeq; ++t)
        for (int64_t i = 0; i < kWidth; ++i) {
          ours.push_back(out[(b * count + t) * kWidth + i]);
          ref.push_back(full[(b * kSeq + first + t) * kWidth + i]);
        }
    EXPECT_LE(relativeError(ours, ref), tolerance)
        << "rows " << first << ".." << first + count;
  }

  double scale = 1.0 / std::sqrt(double(kHeadDim));
  std::vector<float> q, k, v, full, keys, values;
};

TEST_F(CachedAttentionTest, PromptAtOnceEqualsFullAttention) {
  write(0, kSeq);
  expectFullRows(attend(0, kSeq), 0, kSeq);
}

TEST_F(CachedAttentionTest, ChunksWithPaddingEqualFullAttention) {
  for (int64_t first = 0; first < kSeq; first += 4) {
    write(first, 4); // the last chunk pads past kSeq with position -1
    std::vector<float> out = attend(first, 4);
    expectFullRows(out, first, 4);
    for (int64_t b = 0; b < kBatch; ++b) // padded rows give zeros
      for (int64_t t = kSeq - first; t < 4; ++t)
        for (int64_t i = 0; i < kWidth; ++i)
          EXPECT_EQ(out[(b * 4 + t) * kWidth + i], 0.0f);
  }
  // Padding wrote nothing past the sequence.
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t i = kSeq * kKvWidth; i < kCapacity * kKvWidth; ++i)
      ASSERT_EQ(keys[b * kCapacity * kKvWidth + i], 0.0f);
}

TEST_F(CachedAttentionTest, DecodingOneRowAtATimeEqualsFullAttention) {
  for (int64_t position = 0; position < kSeq; ++position) {
    write(position, 1);
    expectFullRows(attend(position, 1), position, 1);
  }
}

TEST_F(CachedAttentionTest, Bf16RoundsTheProductsOperands) {
  write(0, kSeq);
  std::vector<float> wide = attend(0, kSeq), narrow = attend(0, kSeq, true);
  std::vector<double> reference(wide.begin(), wide.end());
  double error = relativeError(narrow, reference);
  EXPECT_GT(error, 0.0);
  EXPECT_LE(error, 1e-2);
}

TEST_F(CachedAttentionTest, PositionsPastTheCapacityAreErrors) {
  std::vector<int32_t> positions(kBatch, int32_t(kCapacity));
  std::vector<float> row(kBatch * kWidth), out(kBatch * kWidth);
  absl::Status status =
      cachedAttention(row.data(), positions.data(), keys.data(), values.data(),
                      kBatch, 1, kCapacity, kHeads, kKvHeads, kHeadDim, scale,
                      false, out.data());
  EXPECT_NE(std::string(status.message()).find("past the cache capacity 16"),
            std::string::npos)
      << status;
  status = cacheWrite(row.data(), positions.data(), kBatch, 1, kKvWidth,
                      kCapacity, keys.data());
  EXPECT_NE(std::string(status.message()).find("past the cache capacity 16"),
            std::string::npos)
      << status;
}

TEST(SelectRowsTest, PicksEachSequencesRow) {
  std::vector<float> input = randomVector(2 * 5 * 3, 4), out(2 * 3);
  std::vector<int32_t> index = {4, 1};
  ASSERT_TRUE(selectRows(input.data(), index.data(), 2, 5, 1, 3, out.data()).ok());
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i], input[4 * 3 + i]);
    EXPECT_EQ(out[3 + i], input[(5 + 1) * 3 + i]);
  }
  index[1] = 5;
  absl::Status status =
      selectRows(input.data(), index.data(), 2, 5, 1, 3, out.data());
  EXPECT_NE(std::string(status.message()).find("outside [0, 5)"),
            std::string::npos)
      << status;
}

} // namespace
} // namespace moert::cpu::testing
