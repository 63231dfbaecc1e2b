//===- TokenFileTest.cpp - the token text format and its errors -----------===//

#include "runtime/exec/TokenFile.h"

#include <gtest/gtest.h>

using namespace moert;

namespace {
std::string errorOf(const std::string &text, int64_t batch = 2,
                    int64_t seq = 4, int64_t vocab = 10) {
  absl::StatusOr<TokenBatch> parsed = parseTokens(text, "t.txt", batch, seq, vocab);
  EXPECT_FALSE(parsed.ok()) << text;
  return parsed.ok() ? "" : std::string(parsed.status().message());
}

TEST(TokenFileTest, ParsesAndPadsShorterSequences) {
  absl::StatusOr<TokenBatch> parsed = parseTokens("1 2 3\n4\t5  6 7\n\n", "t.txt", 2, 4, 10);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->padded(4), (std::vector<int32_t>{1, 2, 3, 0, 4, 5, 6, 7}));
}

TEST(TokenFileTest, ErrorsNameTheLineAndTheToken) {
  EXPECT_EQ(errorOf("1 2\n3 x\n"), "t.txt:2: 'x' is not a token id");
  EXPECT_EQ(errorOf("1 2\n3 10\n"),
            "t.txt:2: token id 10 at position 1 is outside the vocabulary [0, 10)");
  EXPECT_EQ(errorOf("-1\n2\n"),
            "t.txt:1: token id -1 at position 0 is outside the vocabulary [0, 10)");
  EXPECT_EQ(errorOf("1 2 3 4 5\n1\n"),
            "t.txt:1: sequence of 5 tokens is longer than the compiled sequence length 4");
  EXPECT_EQ(errorOf("1\n\n2\n"), "t.txt:2: empty sequence");
  EXPECT_EQ(errorOf("1\n"),
            "t.txt: holds 1 sequences but the model was compiled for a batch of 2");
  EXPECT_EQ(errorOf("99999999999999999999\n1\n"),
            "t.txt:1: '99999999999999999999' is not a token id");
}
} // namespace
