//===- EmbeddingTest.cpp - row lookup and id validation -------------------===//

#include "runtime/cpu/Kernels.h"
#include "tests/runtime/cpu/KernelTestUtil.h"

#include <gtest/gtest.h>

namespace moert::cpu::testing {
namespace {

TEST(EmbeddingTest, CopiesRowsOfF32AndBf16Tables) {
  int64_t vocab = 11, d = 7;
  auto table = randomVector(vocab * d, 1);
  std::vector<uint16_t> bits = toBf16(table);
  std::vector<float> rounded = roundedToBf16(table);
  std::vector<int32_t> ids = {3, 0, 10, 3, 5};
  int64_t n = int64_t(ids.size());
  std::vector<float> fromF32(n * d), fromBf16(n * d);
  ASSERT_TRUE(embedding({table.data(), DType::kF32}, vocab, d, ids.data(), n,
                        fromF32.data())
                  .ok());
  ASSERT_TRUE(embedding({bits.data(), DType::kBF16}, vocab, d, ids.data(), n,
                        fromBf16.data())
                  .ok());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      EXPECT_EQ(fromF32[i * d + j], table[ids[i] * d + j]);
      EXPECT_EQ(fromBf16[i * d + j], rounded[ids[i] * d + j]);
    }
}

TEST(EmbeddingTest, RejectsIdsOutsideTheVocabulary) {
  int64_t vocab = 256, d = 3;
  std::vector<float> table(vocab * d, 1.0f), out(8 * d);
  for (auto [bad, message] :
       {std::pair<int32_t, const char *>{
            256, "token id 256 at position 7 is outside the vocabulary [0, "
                 "256)"},
        {-1, "token id -1 at position 7 is outside the vocabulary [0, 256)"}}) {
    std::vector<int32_t> ids = {0, 1, 2, 3, 4, 5, 255, bad};
    absl::Status status = embedding({table.data(), DType::kF32}, vocab, d,
                                    ids.data(), 8, out.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), message);
  }
}

} // namespace
} // namespace moert::cpu::testing
