//===- SafetensorsTest.cpp - checkpoint files, good and damaged -----------===//

#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/Safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace moert;
namespace fs = std::filesystem;

namespace {
std::string scratchDir(const std::string &name) {
  std::string dir = (fs::temp_directory_path() /
                     ("moert-" + name + "-" + std::to_string(getpid())))
                        .string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A file of the given header JSON followed by `dataBytes` zero bytes.
std::string withHeader(const std::string &header, size_t dataBytes) {
  std::string bytes(8, '\0');
  uint64_t length = header.size();
  std::memcpy(bytes.data(), &length, 8);
  return bytes + header + std::string(dataBytes, '\0');
}

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override { dir = scratchDir("safetensors"); }
  void TearDown() override { fs::remove_all(dir); }

  /// The error of opening a file with these bytes (which must fail).
  std::string errorOf(const std::string &bytes) {
    std::string path = dir + "/bad.safetensors";
    spit(path, bytes);
    absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
    EXPECT_FALSE(file.ok());
    std::string message = file.ok() ? "" : std::string(file.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
    return message;
  }

  std::string dir;
};

TEST_F(SafetensorsTest, RoundTripsEveryDtypeBitExactly) {
  std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, 1e-30f, -7.0f};
  std::vector<uint16_t> half = {0x3f80, 0xbf80, 0x0001};
  std::vector<int32_t> i32 = {-1, 2};
  std::vector<int64_t> i64 = {int64_t(1) << 40};
  std::string path = dir + "/model.safetensors";
  ASSERT_TRUE(writeSafetensors(path,
                               {{"a", DType::kF32, {2, 3}, f32.data()},
                                {"b", DType::kBF16, {3}, half.data()},
                                {"c", DType::kF16, {3}, half.data()},
                                {"d", DType::kI32, {2}, i32.data()},
                                {"e", DType::kI64, {1}, i64.data()},
                                {"empty", DType::kF32, {0, 4}, nullptr}},
                               {{"format", "pt"}})
                  .ok());
  std::string bytes = slurp(path);
  uint64_t header;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);

  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const TensorView *a = file->find("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(a->data, f32.data(), 24), 0);
  EXPECT_EQ(file->find("b")->dtype, DType::kBF16);
  EXPECT_EQ(std::memcmp(file->find("c")->data, half.data(), 6), 0);
  EXPECT_EQ(std::memcmp(file->find("e")->data, i64.data(), 8), 0);
  EXPECT_EQ(file->find("empty")->bytes, 0u);
  EXPECT_EQ(file->tensors().size(), 6u);
}

TEST_F(SafetensorsTest, WriteIsAtomic) {
  std::vector<float> data(4, 1.0f);
  absl::Status status = writeSafetensors(dir + "/missing/x.safetensors",
                                         {{"a", DType::kF32, {4}, data.data()}});
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(fs::is_empty(dir)); // no partial file, no temporary left
  EXPECT_FALSE(writeSafetensors(dir + "/d.safetensors",
                                {{"a", DType::kF32, {4}, data.data()},
                                 {"a", DType::kF32, {4}, data.data()}})
                   .ok());
}

TEST_F(SafetensorsTest, RejectsDamagedFilesWithOneLine) {
  EXPECT_NE(errorOf("abc").find("truncated"), std::string::npos);
  EXPECT_NE(errorOf(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}")
                .find("header length"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader("{not json", 0)).find("malformed header JSON"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader("[1,2]", 0)).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(
                        R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8))
                .find("tensor 'w': unsupported dtype F64"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(
                        R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}})", 24))
                .find("hold 12 bytes but shape [2, 3] of F32 needs 24"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(
                        R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8))
                .find("fall outside"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(
                        R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", 16))
                .find("negative"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               12))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(errorOf(withHeader(R"({"w":{"dtype":"F32"}})", 0))
                .find("needs dtype, shape and data_offsets"),
            std::string::npos);
}

TEST_F(SafetensorsTest, ShardedCheckpointsFollowTheirIndex) {
  std::vector<float> data = {1, 2, 3, 4};
  ASSERT_TRUE(writeSafetensors(dir + "/s1.safetensors",
                               {{"a", DType::kF32, {2}, data.data()}}).ok());
  ASSERT_TRUE(writeSafetensors(dir + "/s2.safetensors",
                               {{"b", DType::kF32, {2}, data.data() + 2}}).ok());
  spit(dir + "/model.safetensors.index.json",
       R"({"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  absl::StatusOr<HfCheckpoint> checkpoint = HfCheckpoint::open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(static_cast<const float *>(
                static_cast<const void *>(checkpoint->find("b")->data))[1],
            4.0f);

  spit(dir + "/model.safetensors.index.json",
       R"({"weight_map":{"a":"s1.safetensors","b":"s3.safetensors"}})");
  absl::StatusOr<HfCheckpoint> missing = HfCheckpoint::open(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("s3.safetensors"),
            std::string::npos);

  ASSERT_TRUE(writeSafetensors(dir + "/s3.safetensors",
                               {{"a", DType::kF32, {2}, data.data()}}).ok());
  spit(dir + "/model.safetensors.index.json",
       R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s3.safetensors"}})");
  absl::StatusOr<HfCheckpoint> duplicate = HfCheckpoint::open(dir);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(std::string(duplicate.status().message()).find("tensor 'a' is in both"),
            std::string::npos);

  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_EQ(HfCheckpoint::open(dir).status().code(), absl::StatusCode::kNotFound);
}
} // namespace
