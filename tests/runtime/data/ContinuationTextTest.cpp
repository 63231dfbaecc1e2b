//===- ContinuationTextTest.cpp - a continuation's text, whole and streamed ===//

#include "ScratchDir.h"

#include "runtime/data/ByteTokenizer.h"
#include "runtime/data/ContinuationText.h"
#include "runtime/data/SentencePieceTokenizer.h"

using namespace moert::data;
using namespace moert::data::testing;

namespace {
/// Streams `continuation` after `prompt`; returns the pieces, the rest last.
std::vector<std::string> streamPieces(const Tokenizer &tokenizer,
                                      const std::vector<int32_t> &prompt,
                                      const std::vector<int32_t> &continuation) {
  ContinuationText text(tokenizer, prompt);
  std::vector<std::string> pieces;
  for (int32_t id : continuation) {
    absl::StatusOr<std::string> piece = text.append(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    pieces.push_back(piece.ok() ? *piece : "");
  }
  pieces.push_back(*text.rest());
  return pieces;
}

TEST(ContinuationText, HoldsBackASplitCharacterUntilItsLastByte) {
  ByteTokenizer bytes;
  std::string after = "a \xe2\x80\x94 b"; // an em dash: three byte tokens
  std::vector<int32_t> continuation(after.begin(), after.end());
  for (int32_t &id : continuation)
    id &= 0xff;
  std::vector<std::string> pieces =
      streamPieces(bytes, {'H', 'i'}, continuation);
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", " ", "", "", "\xe2\x80\x94",
                                              " ", "b", ""}));
}

TEST(ContinuationText, RestGivesAnIncompleteCharacterAtTheEnd) {
  ByteTokenizer bytes;
  std::vector<std::string> pieces = streamPieces(bytes, {}, {'x', 0xe2, 0x80});
  EXPECT_EQ(pieces, (std::vector<std::string>{"x", "", "", "\xe2\x80"}));
}

class ContinuationOfSentencePiece : public ScratchDirTest {};

TEST_F(ContinuationOfSentencePiece, KeepsTheSpaceBeforeTheFirstWord) {
  SentencePieceTraining training{{excerptPath()}, 400, "bpe", dir + "/bpe", 2};
  ASSERT_TRUE(trainSentencePiece(training).ok());
  auto tokenizer = SentencePieceTokenizer::load(training.outPrefix + ".model");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::vector<int32_t> prompt = *(*tokenizer)->encode("Call me Ishmael.");
  std::vector<int32_t> whole =
      *(*tokenizer)->encode("Call me Ishmael. Some years ago, the whale.");
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), whole.begin()));
  std::vector<int32_t> continuation(whole.begin() + prompt.size(), whole.end());

  // Decoded alone, the continuation loses its leading space.
  EXPECT_EQ(*(*tokenizer)->decode(continuation), "Some years ago, the whale.");
  ContinuationText text(**tokenizer, prompt);
  for (int32_t id : continuation)
    ASSERT_TRUE(text.append(id).ok());
  EXPECT_EQ(*text.text(), " Some years ago, the whale.");

  std::vector<std::string> pieces =
      streamPieces(**tokenizer, prompt, continuation);
  std::string joined;
  for (const std::string &piece : pieces)
    joined += piece;
  EXPECT_EQ(joined, " Some years ago, the whale.");
  EXPECT_GT(pieces.size(), 4u); // streamed piece by piece
}

TEST(ContinuationText, IdsOutsideTheVocabularyAreAnError) {
  ByteTokenizer bytes;
  ContinuationText text(bytes, {'a'});
  absl::StatusOr<std::string> piece = text.append(300);
  ASSERT_FALSE(piece.ok());
  EXPECT_NE(piece.status().message().find("outside the vocabulary"),
            absl::string_view::npos);
}
} // namespace
