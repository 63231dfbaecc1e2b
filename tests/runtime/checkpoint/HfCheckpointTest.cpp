//===- HfCheckpointTest.cpp - single-file and sharded HF directories ------===//

#include "ScratchFiles.h"

#include "runtime/checkpoint/HfCheckpoint.h"

#include <cstring>
#include <filesystem>

using namespace moert;
using namespace moert::testing;
namespace fs = std::filesystem;

namespace {
class HfCheckpointDir : public ScratchDirTest {
protected:
  /// Two shards: s1 holds a and b, s2 holds c.
  void writeTwoShards() {
    ASSERT_TRUE(writeSafetensors(dir + "/model-00001-of-00002.safetensors",
                                 {{"a", DType::kF32, {2}, values},
                                  {"b", DType::kF32, {1}, values + 2}})
                    .ok());
    ASSERT_TRUE(writeSafetensors(dir + "/model-00002-of-00002.safetensors",
                                 {{"c", DType::kF32, {3}, values + 3}})
                    .ok());
  }

  void writeIndex(const std::string &weightMap) {
    writeBytes(dir + "/model.safetensors.index.json",
               R"({"metadata":{"total_size":24},"weight_map":{)" + weightMap +
                   "}}");
  }

  static constexpr const char *kIndexOfTwoShards =
      R"("a":"model-00001-of-00002.safetensors",)"
      R"("b":"model-00001-of-00002.safetensors",)"
      R"("c":"model-00002-of-00002.safetensors")";

  /// The error message of opening `dir`, which must fail.
  std::string errorOfOpening() {
    absl::StatusOr<HfCheckpoint> checkpoint = HfCheckpoint::open(dir);
    EXPECT_FALSE(checkpoint.ok());
    std::string message(checkpoint.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }

  const float values[6] = {1, 2, 3, 4, 5, 6};
};

TEST_F(HfCheckpointDir, ReadsASingleFile) {
  ASSERT_TRUE(writeSafetensors(dir + "/model.safetensors",
                               {{"z", DType::kF32, {2}, values},
                                {"y", DType::kF32, {1}, values}})
                  .ok());
  absl::StatusOr<HfCheckpoint> checkpoint = HfCheckpoint::open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->names(), (std::vector<std::string>{"y", "z"}));
  EXPECT_EQ(checkpoint->describe("z"), dir + "/model.safetensors");
  EXPECT_EQ(checkpoint->find("x"), nullptr);
}

TEST_F(HfCheckpointDir, ReadsShardsListedInTheIndex) {
  writeTwoShards();
  writeIndex(kIndexOfTwoShards);
  absl::StatusOr<HfCheckpoint> opened = HfCheckpoint::open(dir);
  ASSERT_TRUE(opened.ok()) << opened.status();
  HfCheckpoint checkpoint = std::move(*opened); // views survive the move
  EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
  const TensorView *c = checkpoint.find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->shape, std::vector<int64_t>{3});
  EXPECT_EQ(std::memcmp(c->data, values + 3, 12), 0);
  EXPECT_EQ(std::memcmp(checkpoint.find("b")->data, values + 2, 4), 0);
  EXPECT_EQ(checkpoint.describe("c"),
            dir + "/model-00002-of-00002.safetensors");
}

TEST_F(HfCheckpointDir, MissingShardIsNamed) {
  writeTwoShards();
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  writeIndex(kIndexOfTwoShards);
  std::string message = errorOfOpening();
  EXPECT_NE(message.find("tensor 'c'"), std::string::npos) << message;
  EXPECT_NE(message.find("'model-00002-of-00002.safetensors' does not exist"),
            std::string::npos)
      << message;
}

TEST_F(HfCheckpointDir, TensorInTwoShardsIsNamed) {
  writeTwoShards();
  ASSERT_TRUE(writeSafetensors(dir + "/extra.safetensors",
                               {{"a", DType::kF32, {2}, values}})
                  .ok());
  writeIndex(std::string(kIndexOfTwoShards) + R"(,"d":"extra.safetensors")");
  std::string message = errorOfOpening();
  EXPECT_NE(message.find("tensor 'a' is in both"), std::string::npos)
      << message;
  EXPECT_NE(message.find("extra.safetensors"), std::string::npos) << message;
}

TEST_F(HfCheckpointDir, IndexAndShardsMustAgree) {
  writeTwoShards();
  // Listed in a shard that does not hold it.
  writeIndex(R"("a":"model-00001-of-00002.safetensors",)"
             R"("b":"model-00002-of-00002.safetensors",)"
             R"("c":"model-00002-of-00002.safetensors")");
  std::string message = errorOfOpening();
  EXPECT_NE(message.find("tensor 'b' is listed in model.safetensors.index.json"
                         " for model-00002-of-00002.safetensors"),
            std::string::npos)
      << message;

  // In a shard but not in the index.
  writeIndex(R"("a":"model-00001-of-00002.safetensors",)"
             R"("c":"model-00002-of-00002.safetensors")");
  message = errorOfOpening();
  EXPECT_NE(message.find("tensor 'b' is not listed"), std::string::npos)
      << message;
}

TEST_F(HfCheckpointDir, BadIndexFilesAreNamed) {
  writeTwoShards();
  struct Case {
    const char *what;
    std::string index;
    const char *mention;
  };
  std::vector<Case> cases = {
      {"malformed", "{\"weight_map\": {", "malformed JSON"},
      {"no weight_map", "{\"metadata\": {}}", "field 'weight_map'"},
      {"weight_map not an object", "{\"weight_map\": []}",
       "field 'weight_map'"},
      {"shard not a string", R"({"weight_map": {"a": 1}})", "tensor 'a'"},
      {"shard outside the directory",
       R"({"weight_map": {"a": "../model-00001-of-00002.safetensors"}})",
       "not a file name in the directory"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    writeBytes(dir + "/model.safetensors.index.json", c.index);
    std::string message = errorOfOpening();
    EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos)
        << message;
    EXPECT_NE(message.find(c.mention), std::string::npos) << message;
  }
}

TEST_F(HfCheckpointDir, DamagedShardErrorNamesTheShard) {
  writeTwoShards();
  writeBytes(dir + "/model-00002-of-00002.safetensors", "garbage");
  writeIndex(kIndexOfTwoShards);
  std::string message = errorOfOpening();
  EXPECT_EQ(message.rfind(dir + "/model-00002-of-00002.safetensors: ", 0), 0u)
      << message;
}

TEST_F(HfCheckpointDir, EmptyDirectoryIsNotFound) {
  EXPECT_EQ(HfCheckpoint::open(dir).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(HfCheckpoint::open(dir + "/nowhere").status().code(),
            absl::StatusCode::kNotFound);
}
} // namespace
