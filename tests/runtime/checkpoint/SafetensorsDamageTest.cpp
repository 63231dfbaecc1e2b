//===- SafetensorsDamageTest.cpp - damaged files fail in one line ---------===//
//
// Each file is built byte by byte. Every error must name the file and the
// tensor or field at fault, fit on one line, and never crash.
//
//===----------------------------------------------------------------------===//

#include "ScratchFiles.h"

#include "runtime/checkpoint/Safetensors.h"

using namespace moert;
using namespace moert::testing;

namespace {
class SafetensorsDamage : public ScratchDirTest {
protected:
  /// Opens a file of `bytes`; returns its status (checks the shape of errors).
  absl::Status openBytes(const std::string &bytes) {
    std::string path = dir + "/damaged.safetensors";
    // A fresh file each time: ext4 flushes files truncated and rewritten,
    // which made the many openings below slow.
    std::filesystem::remove(path);
    writeBytes(path, bytes);
    absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
    if (file.ok()) {
      // Whatever was accepted must lie inside the file.
      const uint8_t *first = nullptr;
      for (const TensorView &view : *file)
        if (!first || view.data < first)
          first = view.data;
      for (const TensorView &view : *file)
        EXPECT_LE(size_t(view.data - first) + view.bytes, bytes.size());
      return absl::OkStatus();
    }
    std::string message(file.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    return file.status();
  }

  /// The message of a file that must fail.
  std::string errorOf(const std::string &bytes) {
    absl::Status status = openBytes(bytes);
    EXPECT_FALSE(status.ok());
    return std::string(status.message());
  }
};

std::string entry(const std::string &name, const std::string &dtype,
                  const std::string &shape, const std::string &offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

TEST_F(SafetensorsDamage, EachCaseIsNamed) {
  struct Case {
    const char *what;
    std::string bytes;
    std::vector<std::string> mentions;
  };
  std::vector<Case> cases = {
      {"empty file", "", {"truncated"}},
      {"shorter than the length", "abc", {"truncated"}},
      {"length past the end", littleEndian64(64) + "{}", {"header length 64"}},
      {"huge length", littleEndian64(~uint64_t(0)) + "{}", {"header length"}},
      {"length just over the limit",
       littleEndian64((uint64_t(100) << 20) + 1) + "{}",
       {"header length"}},
      {"zero length", littleEndian64(0), {"malformed header JSON"}},
      {"malformed JSON",
       withHeader("{\"a\": [1,", 0),
       {"malformed header JSON"}},
      {"garbage header",
       withHeader("\x01\x02\n\xff\xfe", 0),
       {"malformed header JSON"}},
      {"array header",
       withHeader("[1,2]", 0),
       {"header is not a JSON object (found array)"}},
      {"string header",
       withHeader("\"x\"", 0),
       {"not a JSON object (found string)"}},
      {"entry not an object",
       withHeader("{\"w\":3}", 0),
       {"tensor 'w'", "not a JSON object"}},
      {"missing data_offsets",
       withHeader(R"({"w":{"dtype":"F32","shape":[1]}})", 4),
       {"tensor 'w'", "field 'data_offsets' is missing"}},
      {"unknown dtype F64",
       withHeader("{" + entry("w", "F64", "[1]", "[0,8]") + "}", 8),
       {"tensor 'w': unsupported dtype F64"}},
      {"dtype not a string",
       withHeader(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
       {"tensor 'w'", "field 'dtype'"}},
      {"shape not an array",
       withHeader("{" + entry("w", "F32", "4", "[0,16]") + "}", 16),
       {"tensor 'w'", "field 'shape'"}},
      {"negative dimension",
       withHeader("{" + entry("w", "F32", "[-4]", "[0,16]") + "}", 16),
       {"tensor 'w'", "field 'shape' holds -4"}},
      {"fractional dimension",
       withHeader("{" + entry("w", "F32", "[1.5]", "[0,4]") + "}", 4),
       {"tensor 'w'", "field 'shape'"}},
      {"shape whose bytes wrap to zero",
       withHeader(
           "{" + entry("w", "F32", "[4611686018427387904]", "[0,0]") + "}", 0),
       {"tensor 'w'", "overflows"}},
      {"shape/bytes mismatch",
       withHeader("{" + entry("lm_head.weight", "F32", "[2,3]", "[0,12]") + "}",
                  24),
       {"tensor 'lm_head.weight': data_offsets [0, 12] hold 12 bytes but "
        "shape [2, 3] of F32 needs 24"}},
      {"negative offset",
       withHeader("{" + entry("w", "F32", "[1]", "[-4,0]") + "}", 4),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"three offsets",
       withHeader("{" + entry("w", "F32", "[1]", "[0,4,8]") + "}", 8),
       {"tensor 'w'", "field 'data_offsets'"}},
      {"begin after end",
       withHeader("{" + entry("w", "F32", "[0]", "[8,4]") + "}", 8),
       {"tensor 'w'", "data_offsets [8, 4]"}},
      {"offsets out of range",
       withHeader("{" + entry("w", "F32", "[4]", "[0,16]") + "}", 8),
       {"tensor 'w'", "fall outside the 8 bytes of data"}},
      {"offsets far out of range",
       withHeader("{" +
                      entry("w", "F32", "[1]",
                            "[18446744073709551612,18446744073709551615]") +
                      "}",
                  8),
       {"tensor 'w'", "fall outside"}},
      {"truncated data",
       withHeader("{" + entry("w", "I64", "[2]", "[0,16]") + "}", 15),
       {"tensor 'w'", "fall outside"}},
      {"overlapping tensors",
       withHeader("{" + entry("a", "F32", "[2]", "[0,8]") + "," +
                      entry("b", "F32", "[2]", "[4,12]") + "}",
                  12),
       {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"}},
      {"identical ranges",
       withHeader("{" + entry("a", "I32", "[1]", "[0,4]") + "," +
                      entry("b", "F32", "[1]", "[0,4]") + "}",
                  4),
       {"'a'", "'b'", "overlap"}},
      {"metadata not an object",
       withHeader(R"({"__metadata__":[1]})", 0),
       {"field '__metadata__'"}},
      {"metadata value not a string",
       withHeader(R"({"__metadata__":{"k":1}})", 0),
       {"__metadata__ 'k'"}},
      {"control characters in a name stay on one line",
       withHeader("{" + entry("a\\nb", "F64", "[1]", "[0,8]") + "}", 8),
       {"tensor 'a\\nb'"}},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    std::string message = errorOf(c.bytes);
    for (const std::string &mention : c.mentions)
      EXPECT_NE(message.find(mention), std::string::npos) << message;
  }
}

TEST_F(SafetensorsDamage, MissingFilesAndDirectoriesAreErrors) {
  std::string missing = dir + "/missing.safetensors";
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(missing);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find(missing), std::string::npos);
  file = SafetensorsFile::open(dir);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a regular file"),
            std::string::npos);
}

TEST_F(SafetensorsDamage, AcceptsWhatTheFormatAllows) {
  // Empty tensors may share an offset or sit inside another's range; gaps
  // and trailing padding between tensors are tolerated.
  std::string header = "{" + entry("a", "F32", "[2]", "[0,8]") + "," +
                       entry("e1", "F32", "[0]", "[4,4]") + "," +
                       entry("e2", "I64", "[0,3]", "[4,4]") + "," +
                       entry("b", "I32", "[1]", "[12,16]") + "}";
  EXPECT_TRUE(openBytes(withHeader(header + "   ", 20)).ok());
  EXPECT_TRUE(openBytes(withHeader("{}", 0)).ok());
  EXPECT_TRUE(openBytes(withHeader(R"({"__metadata__":{}})", 0)).ok());
}

TEST_F(SafetensorsDamage, NeverCrashesOnTruncationsOrFlippedBytes) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  std::string source = dir + "/source.safetensors";
  ASSERT_TRUE(writeSafetensors(source,
                               {{"a", DType::kF32, {2, 2}, values.data()},
                                {"b", DType::kBF16, {2}, values.data()},
                                {"c", DType::kI64, {0}, nullptr}},
                               {{"k", "v"}})
                  .ok());
  std::string good = readBytes(source);
  ASSERT_TRUE(openBytes(good).ok());
  for (size_t length = 0; length < good.size(); ++length) {
    SCOPED_TRACE(length);
    EXPECT_FALSE(openBytes(good.substr(0, length)).ok());
  }
  // Every header byte replaced by each of a few troublesome values: some
  // results are still valid files, none may crash or reach outside.
  size_t headerEnd = 8 + uint8_t(good[0]) + (size_t(uint8_t(good[1])) << 8);
  for (size_t at = 0; at < headerEnd; ++at)
    for (char replacement : {'\0', '\xff', '-', '9', '"', '{', ']', ' '}) {
      std::string damaged = good;
      damaged[at] = replacement;
      openBytes(damaged).IgnoreError(); // either outcome; it is checked inside
    }
}
} // namespace
