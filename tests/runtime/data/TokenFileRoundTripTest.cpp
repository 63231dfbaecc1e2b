//===- TokenFileRoundTripTest.cpp - .tok files read back what was written -===//

#include "ScratchDir.h"

#include "runtime/data/MappedTokenFile.h"
#include "runtime/data/TokenFileWriter.h"

using namespace moert::data;
using namespace moert::data::testing;

namespace {
class TokenFileRoundTrip : public ScratchDirTest {
protected:
  void roundTrip(uint64_t vocab, std::optional<uint32_t> eos,
                 uint32_t expectedBytes) {
    std::vector<std::vector<int32_t>> documents = {
        {0, 1, 2, int32_t(vocab - 1)}, {}, {int32_t(vocab / 2)}};
    std::string path = dir + "/corpus.tok";
    ASSERT_TRUE(writeTokenFile(path, vocab, eos, documents).ok());
    absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->vocabSize(), vocab);
    EXPECT_EQ(file->tokenBytes(), expectedBytes);
    EXPECT_EQ(file->eosId(), eos);
    EXPECT_EQ(file->documentCount(), 3);
    int64_t tokens = 0;
    for (size_t d = 0; d < documents.size(); ++d) {
      std::vector<int32_t> expected = documents[d];
      if (eos)
        expected.push_back(int32_t(*eos));
      EXPECT_EQ(file->document(int64_t(d)), expected) << "document " << d;
      tokens += int64_t(expected.size());
    }
    EXPECT_EQ(file->tokenCount(), tokens);
    EXPECT_EQ(file->token(3), int32_t(vocab - 1));
    EXPECT_EQ(listDir(), std::vector<std::string>{"corpus.tok"});
  }
};

TEST_F(TokenFileRoundTrip, Uint16WithEos) { roundTrip(257, 256, 2); }
TEST_F(TokenFileRoundTrip, Uint16AtTheLimit) { roundTrip(65536, 3, 2); }
TEST_F(TokenFileRoundTrip, Uint32WithoutEos) {
  roundTrip(65537, std::nullopt, 4);
}
TEST_F(TokenFileRoundTrip, Uint32LargeVocab) { roundTrip(1u << 20, 2, 4); }

TEST_F(TokenFileRoundTrip, EmptyFileIsValid) {
  std::string path = dir + "/empty.tok";
  ASSERT_TRUE(writeTokenFile(path, 10, std::nullopt, {}).ok());
  absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tokenCount(), 0);
  EXPECT_EQ(file->documentCount(), 0);
}

TEST_F(TokenFileRoundTrip, OutOfVocabularyWriteLeavesNothing) {
  std::string path = dir + "/bad.tok";
  absl::Status status = writeTokenFile(path, 100, 99, {{1, 2}, {3, 100}});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            path + ": document 1: token id 100 at position 1 is outside the "
                   "vocabulary [0, 100)");
  EXPECT_TRUE(listDir().empty());
}

TEST_F(TokenFileRoundTrip, UnfinishedWriterLeavesNothing) {
  {
    auto writer = TokenFileWriter::create(dir + "/partial.tok", 10, 9);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->addDocument(std::vector<int32_t>{1, 2, 3}).ok());
  }
  EXPECT_TRUE(listDir().empty());
}

TEST_F(TokenFileRoundTrip, RewriteReplacesAtomically) {
  std::string path = dir + "/corpus.tok";
  ASSERT_TRUE(writeTokenFile(path, 10, std::nullopt, {{1, 2, 3}}).ok());
  ASSERT_TRUE(writeTokenFile(path, 10, std::nullopt, {{4}}).ok());
  absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->document(0), std::vector<int32_t>{4});
  EXPECT_EQ(listDir(), std::vector<std::string>{"corpus.tok"});
}
} // namespace
