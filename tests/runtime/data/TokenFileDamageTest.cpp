//===- TokenFileDamageTest.cpp - damaged .tok files fail in one line ------===//
//
// A good file is written, then one field at a time is damaged. Every error
// must name the file and the field at fault, fit on one line, and never
// read outside the mapping.
//
//===----------------------------------------------------------------------===//

#include "ScratchDir.h"

#include "runtime/data/MappedTokenFile.h"
#include "runtime/data/TokenFileWriter.h"

#include <cstring>

using namespace moert::data;
using namespace moert::data::testing;

namespace {
// Byte offsets of the header fields (docs/data.md).
constexpr size_t kVersion = 8, kTokenBytes = 12, kVocab = 16, kTokens = 24,
                 kDocuments = 32, kTokensOffset = 40, kDocumentsOffset = 48,
                 kEos = 56, kIds = 64, kTable = 80;

class TokenFileDamage : public ScratchDirTest {
protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    // vocab 300, EOS 299: 7 uint16 ids at [64, 78), the table at [80, 104).
    std::string path = dir + "/good.tok";
    ASSERT_TRUE(writeTokenFile(path, 300, 299, {{1, 2, 3}, {4, 5}}).ok());
    good = readBytes(path);
    ASSERT_EQ(good.size(), 104u);
    ASSERT_TRUE(MappedTokenFile::open(path).ok());
  }

  template <typename T> std::string with(size_t offset, T value) {
    std::string bytes = good;
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
    return bytes;
  }

  /// The error of opening `bytes`, checked for shape.
  std::string errorOf(const std::string &bytes) {
    std::string path = dir + "/damaged.tok";
    std::filesystem::remove(path);
    writeBytes(path, bytes);
    absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
    EXPECT_FALSE(file.ok());
    if (file.ok())
      return "";
    std::string message(file.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    return message;
  }

  std::string good;
};

TEST_F(TokenFileDamage, EachFieldIsNamed) {
  struct Case {
    const char *what;
    std::string bytes;
    std::string mention;
  };
  uint64_t huge = uint64_t(1) << 62;
  std::vector<Case> cases = {
      {"empty", "", "truncated: 0 bytes"},
      {"short header", good.substr(0, 10), "truncated: 10 bytes"},
      {"cut in the ids", good.substr(0, 70), "token_count 7"},
      {"cut in the table", good.substr(0, 90), "document_count 2"},
      {"trailing bytes", good + "x", "document_count 2"},
      {"bad magic", with<char>(0, 'X'), "bad magic"},
      {"version", with<uint32_t>(kVersion, 2), "version 2"},
      {"token_bytes", with<uint32_t>(kTokenBytes, 4), "token_bytes 4"},
      {"vocab zero", with<uint64_t>(kVocab, 0), "vocab_size 0"},
      {"vocab huge", with<uint64_t>(kVocab, huge), "vocab_size"},
      {"vocab below eos", with<uint64_t>(kVocab, 200), "eos_id 299"},
      {"eos", with<uint32_t>(kEos, 300), "eos_id 300"},
      {"id out of vocab", with<uint16_t>(kIds + 2, 300),
       "token id 300 at token 1 is >= vocab_size 300"},
      {"token_count overflows", with<uint64_t>(kTokens, huge),
       "token_count 4611686018427387904 overflows"},
      {"token_count wraps", with<uint64_t>(kTokens, ~uint64_t(0) / 2 + 2),
       "token_count"},
      {"token_count low", with<uint64_t>(kTokens, 6), "document table entry 2"},
      {"document_count", with<uint64_t>(kDocuments, 3), "document_count 3"},
      {"document_count huge", with<uint64_t>(kDocuments, huge),
       "document_count"},
      {"tokens_offset", with<uint64_t>(kTokensOffset, 72), "tokens_offset 72"},
      {"documents_offset", with<uint64_t>(kDocumentsOffset, 88),
       "documents_offset 88"},
      {"table start", with<uint64_t>(kTable, 1), "document table entry 0"},
      {"table order", with<uint64_t>(kTable + 8, 8), "document table entry 1"},
      {"table end", with<uint64_t>(kTable + 16, 6), "document table ends"},
  };
  for (const Case &c : cases) {
    std::string message = errorOf(c.bytes);
    EXPECT_NE(message.find(c.mention), std::string::npos)
        << c.what << ": " << message;
  }
}

TEST_F(TokenFileDamage, MissingFileIsNamed) {
  absl::StatusOr<MappedTokenFile> file =
      MappedTokenFile::open(dir + "/absent.tok");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message().rfind(dir + "/absent.tok: cannot open", 0),
            0u)
      << file.status();
}

TEST_F(TokenFileDamage, DirectoryIsRefused) {
  absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(dir);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a regular file"),
            absl::string_view::npos);
}
} // namespace
