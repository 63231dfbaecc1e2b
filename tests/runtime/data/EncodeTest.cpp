//===- EncodeTest.cpp - text files to .tok files, with a validation cut ---===//

#include "ScratchDir.h"

#include "runtime/data/ByteTokenizer.h"
#include "runtime/data/Encode.h"
#include "runtime/data/MappedTokenFile.h"

using namespace moert::data;
using namespace moert::data::testing;

namespace {
class Encode : public ScratchDirTest {
protected:
  std::vector<int32_t> allIds(const std::string &path) {
    absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
    EXPECT_TRUE(file.ok()) << file.status();
    std::vector<int32_t> ids(size_t(file->tokenCount()));
    file->read(0, file->tokenCount(), ids.data());
    return ids;
  }
  ByteTokenizer bytes;
};

TEST_F(Encode, EachFileIsADocumentEndedByEos) {
  writeBytes(dir + "/a.txt", "abc");
  writeBytes(dir + "/b.txt", "de");
  absl::StatusOr<EncodeSummary> summary = encodeFiles(
      bytes, {{dir + "/a.txt", dir + "/b.txt"}, dir + "/out.tok", 0});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->documents, 2);
  EXPECT_EQ(summary->trainTokens, 7);
  EXPECT_EQ(allIds(dir + "/out.tok"),
            (std::vector<int32_t>{'a', 'b', 'c', 256, 'd', 'e', 256}));
  absl::StatusOr<MappedTokenFile> file =
      MappedTokenFile::open(dir + "/out.tok");
  EXPECT_EQ(file->documentCount(), 2);
  EXPECT_EQ(file->vocabSize(), 257u);
}

TEST_F(Encode, ValidationTakesTheLastFraction) {
  // 10 + 1 and 8 + 1 ids: 20 in all, the last 5 (a quarter) validate, so
  // the second document is cut after its 4th id.
  writeBytes(dir + "/a.txt", "0123456789");
  writeBytes(dir + "/b.txt", "abcdefgh");
  absl::StatusOr<EncodeSummary> summary = encodeFiles(
      bytes, {{dir + "/a.txt", dir + "/b.txt"}, dir + "/out.tok", 0.25});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->trainTokens, 15);
  EXPECT_EQ(summary->validationTokens, 5);
  std::vector<int32_t> train = allIds(dir + "/out.tok"),
                       validation = allIds(dir + "/out.val.tok");
  EXPECT_EQ(train.back(), 'd');
  EXPECT_EQ(validation, (std::vector<int32_t>{'e', 'f', 'g', 'h', 256}));
  EXPECT_EQ(MappedTokenFile::open(dir + "/out.tok")->documentCount(), 2);
  EXPECT_EQ(MappedTokenFile::open(dir + "/out.val.tok")->documentCount(), 1);
}

TEST_F(Encode, ErrorsNameTheFileAndLeaveNothing) {
  writeBytes(dir + "/a.txt", "abc");
  writeBytes(dir + "/empty.txt", "");
  struct Case {
    EncodeOptions options;
    std::string message;
  };
  std::string out = dir + "/out.tok";
  std::vector<Case> cases = {
      {{{dir + "/a.txt", dir + "/absent.txt"}, out, 0},
       dir + "/absent.txt: cannot open"},
      {{{dir + "/empty.txt"}, out, 0}, dir + "/empty.txt: empty corpus"},
      {{{dir + "/a.txt"}, out, 1.0}, "validation fraction 1 is outside [0, 1)"},
      {{{dir + "/a.txt"}, out, 0.01},
       out + ": validation fraction 0.01 of 4 tokens leaves 4 for training "
             "and 0 for validation"},
      {{{dir + "/a.txt"}, dir + "/absent/out.tok", 0},
       dir + "/absent/out.tok: cannot create"},
  };
  for (const Case &c : cases) {
    absl::StatusOr<EncodeSummary> summary = encodeFiles(bytes, c.options);
    ASSERT_FALSE(summary.ok()) << c.message;
    EXPECT_EQ(summary.status().message().rfind(c.message, 0), 0u)
        << summary.status();
  }
  EXPECT_EQ(listDir(), (std::vector<std::string>{"a.txt", "empty.txt"}));
}
} // namespace
