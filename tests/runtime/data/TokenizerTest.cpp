//===- TokenizerTest.cpp - byte and SentencePiece tokenizers --------------===//
//
// The SentencePiece model is trained here, on the committed corpus excerpt,
// into a temporary directory: no model file is checked in.
//
//===----------------------------------------------------------------------===//

#include "ScratchDir.h"

#include "runtime/data/ByteTokenizer.h"
#include "runtime/data/SentencePieceTokenizer.h"

using namespace moert::data;
using namespace moert::data::testing;

namespace {
TEST(ByteTokenizer, RoundTripsBytes) {
  ByteTokenizer bytes;
  EXPECT_EQ(bytes.vocabSize(), 257);
  EXPECT_EQ(bytes.eosId(), 256u);
  std::string text = std::string("Call me Ishmael.\n\xe2\x80\x94 ") + '\0' +
                     '\xff';
  absl::StatusOr<std::vector<int32_t>> ids = bytes.encode(text);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), text.size());
  EXPECT_EQ((*ids)[0], 'C');
  EXPECT_EQ((*ids)[17], 0xe2);
  absl::StatusOr<std::string> back = bytes.decode(*ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, text);
}

TEST(ByteTokenizer, EosDecodesToNewlineAndRangeIsChecked) {
  ByteTokenizer bytes;
  absl::StatusOr<std::string> text = bytes.decode({'a', 256, 'b'});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "a\nb");
  absl::StatusOr<std::string> bad = bytes.decode({'a', 257});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "bytes: token id 257 at position 1 is outside the vocabulary "
            "[0, 257)");
}

class SentencePiece : public ScratchDirTest {
protected:
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
  trained(const std::string &type, int64_t vocab) {
    SentencePieceTraining training{{excerptPath()}, vocab, type,
                                   dir + "/" + type, 2};
    if (absl::Status status = trainSentencePiece(training); !status.ok())
      return status;
    return SentencePieceTokenizer::load(training.outPrefix + ".model");
  }
};

TEST_F(SentencePiece, BpeRoundTripsASentence) {
  auto tokenizer = trained("bpe", 400);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocabSize(), 400);
  EXPECT_EQ((*tokenizer)->eosId(), 2u);
  EXPECT_EQ(listDir(), (std::vector<std::string>{"bpe.model", "bpe.vocab"}));
  std::string sentence = "Call me Ishmael. Some years ago, the whale.";
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->encode(sentence);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_LT(ids->size(), sentence.size()); // pieces longer than bytes
  for (int32_t id : *ids) {
    EXPECT_GE(id, 3); // no unk, bos, eos in plain English
    EXPECT_LT(id, 400);
  }
  absl::StatusOr<std::string> back = (*tokenizer)->decode(*ids);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, sentence);
  // EOS separates documents on decoding.
  std::vector<int32_t> two = *ids;
  two.push_back(2);
  two.insert(two.end(), ids->begin(), ids->end());
  EXPECT_EQ(*(*tokenizer)->decode(two), sentence + "\n" + sentence);
}

TEST_F(SentencePiece, UnigramRoundTripsASentence) {
  auto tokenizer = trained("unigram", 300);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::string sentence = "The sea was calm, and the ship sailed on.";
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->encode(sentence);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*(*tokenizer)->decode(*ids), sentence);
}

TEST_F(SentencePiece, TrainingErrorsNameTheInputAndLeaveNothing) {
  std::string empty = dir + "/empty.txt";
  writeBytes(empty, "");
  struct Case {
    SentencePieceTraining training;
    std::string message;
  };
  std::string out = dir + "/out";
  std::vector<Case> cases = {
      {{{dir + "/absent.txt"}, 300, "bpe", out, 1},
       dir + "/absent.txt: cannot open"},
      {{{empty}, 300, "bpe", out, 1}, empty + ": empty corpus"},
      {{{excerptPath()}, 300, "wordpiece", out, 1},
       "model type 'wordpiece' is not bpe or unigram"},
      {{{excerptPath()}, 2, "bpe", out, 1}, "vocab size 2 is below 4"},
  };
  for (const Case &c : cases) {
    absl::Status status = trainSentencePiece(c.training);
    ASSERT_FALSE(status.ok()) << c.message;
    EXPECT_NE(status.message().find(c.message), absl::string_view::npos)
        << status;
  }
  // A vocabulary larger than the corpus allows fails inside sentencepiece.
  writeBytes(dir + "/tiny.txt", "ab ab ab\n");
  absl::Status status =
      trainSentencePiece({{dir + "/tiny.txt"}, 5000, "bpe", out, 1});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind(out + ".model: SentencePiece training "
                                         "failed: ",
                                   0),
            0u)
      << status;
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
  EXPECT_EQ(listDir(), (std::vector<std::string>{"empty.txt", "tiny.txt"}));
}

TEST_F(SentencePiece, LoadErrorsNameTheFile) {
  auto missing = SentencePieceTokenizer::load(dir + "/absent.model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            dir + "/absent.model: cannot open the SentencePiece model: No "
                  "such file or directory");
  auto directory = SentencePieceTokenizer::load(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().message(),
            dir + ": a directory, expected the SentencePiece model");
  writeBytes(dir + "/garbage.model", "this is not a protobuf");
  auto garbage = SentencePieceTokenizer::load(dir + "/garbage.model");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().message().rfind(
                dir + "/garbage.model: not a SentencePiece model", 0),
            0u)
      << garbage.status();
}
} // namespace
