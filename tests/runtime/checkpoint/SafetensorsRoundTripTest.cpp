//===- SafetensorsRoundTripTest.cpp - write, read back, atomic writes -----===//

#include "ScratchFiles.h"

#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <type_traits>

using namespace moert;
using namespace moert::testing;
namespace fs = std::filesystem;

namespace {
static_assert(!std::is_copy_constructible_v<SafetensorsFile>);
static_assert(std::is_nothrow_move_constructible_v<SafetensorsFile>);

using SafetensorsRoundTrip = ScratchDirTest;

uint64_t headerLength(const std::string &bytes) {
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = (length << 8) | uint8_t(bytes[i]);
  return length;
}

TEST_F(SafetensorsRoundTrip, EveryDtypeComesBackBitExactly) {
  // Bit patterns a lossy path would change: NaN payloads, denormals, -0.
  std::vector<uint32_t> f32 = {0x3fc00000, 0x7fc00001, 0x00000001,
                               0x80000000, 0xff800000, 0x12345678};
  std::vector<uint16_t> bf16 = {0x3f80, 0x7fc1, 0x0001};
  std::vector<uint16_t> f16 = {0x3c00, 0xfc00, 0x8001, 0x7e01};
  std::vector<int32_t> i32 = {-1, INT32_MIN, INT32_MAX};
  std::vector<int64_t> i64 = {INT64_MIN, -2, int64_t(1) << 40};
  std::string path = dir + "/model.safetensors";
  std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                 {"note", "a\nb \"c\""}};
  ASSERT_TRUE(writeSafetensors(path,
                               {{"w.f32", DType::kF32, {2, 3}, f32.data()},
                                {"w.bf16", DType::kBF16, {3}, bf16.data()},
                                {"w.f16", DType::kF16, {2, 1, 2}, f16.data()},
                                {"scalar", DType::kI32, {}, i32.data()},
                                {"w.i32", DType::kI32, {3}, i32.data()},
                                {"empty", DType::kF32, {0, 4}, nullptr},
                                {"w.i64", DType::kI64, {3}, i64.data()}},
                               metadata)
                  .ok());

  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata(), metadata);
  auto expect = [&](const char *name, DType dtype, std::vector<int64_t> shape,
                    const void *data, size_t bytes) {
    SCOPED_TRACE(name);
    const TensorView *view = file->find(name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->name, name);
    EXPECT_EQ(view->dtype, dtype);
    EXPECT_EQ(view->shape, shape);
    ASSERT_EQ(view->bytes, bytes);
    if (bytes) {
      EXPECT_EQ(std::memcmp(view->data, data, bytes), 0);
    }
  };
  expect("w.f32", DType::kF32, {2, 3}, f32.data(), 24);
  expect("w.bf16", DType::kBF16, {3}, bf16.data(), 6);
  expect("w.f16", DType::kF16, {2, 1, 2}, f16.data(), 8);
  expect("scalar", DType::kI32, {}, i32.data(), 4);
  expect("w.i32", DType::kI32, {3}, i32.data(), 12);
  expect("empty", DType::kF32, {0, 4}, nullptr, 0);
  expect("w.i64", DType::kI64, {3}, i64.data(), 24);
  EXPECT_EQ(file->find("missing"), nullptr);

  // Iteration follows the data, which the writer laid out in the given order.
  std::vector<std::string> order;
  for (const TensorView &view : *file)
    order.push_back(view.name);
  EXPECT_EQ(order,
            (std::vector<std::string>{"w.f32", "w.bf16", "w.f16", "scalar",
                                      "w.i32", "empty", "w.i64"}));
}

TEST_F(SafetensorsRoundTrip, HeaderIsPaddedWithSpacesAndDataIsContiguous) {
  std::vector<uint8_t> data(7 + 10, 0xab);
  std::string path = dir + "/padded.safetensors";
  // Names of assorted lengths, so an unpadded header would be misaligned.
  ASSERT_TRUE(writeSafetensors(path, {{"abc", DType::kI32, {1}, data.data()},
                                      {"de", DType::kBF16, {5}, data.data()},
                                      {"f", DType::kI64, {1}, data.data()}})
                  .ok());
  std::string bytes = readBytes(path);
  uint64_t length = headerLength(bytes);
  EXPECT_EQ(length % 8, 0u);
  ASSERT_LE(8 + length, bytes.size());
  std::string header = bytes.substr(8, length);
  size_t jsonEnd = header.find_last_not_of(' ') + 1;
  EXPECT_EQ(header[jsonEnd - 1], '}');
  EXPECT_LT(header.size() - jsonEnd, 8u);

  nlohmann::json json = nlohmann::json::parse(header);
  EXPECT_EQ(json["abc"]["data_offsets"], nlohmann::json({0, 4}));
  EXPECT_EQ(json["de"]["data_offsets"], nlohmann::json({4, 14}));
  EXPECT_EQ(json["f"]["data_offsets"], nlohmann::json({14, 22}));
  EXPECT_FALSE(json.contains("__metadata__")); // none given, none written
  EXPECT_EQ(bytes.size(), 8 + length + 22);
}

TEST_F(SafetensorsRoundTrip, ViewsSurviveMovingTheFile) {
  std::vector<float> values = {1, 2, 3};
  std::string path = dir + "/m.safetensors";
  ASSERT_TRUE(
      writeSafetensors(path, {{"v", DType::kF32, {3}, values.data()}}).ok());
  absl::StatusOr<SafetensorsFile> opened = SafetensorsFile::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const TensorView *view = opened->find("v");
  SafetensorsFile moved = std::move(*opened);
  EXPECT_EQ(moved.find("v"), view);
  EXPECT_EQ(std::memcmp(view->data, values.data(), 12), 0);
}

TEST_F(SafetensorsRoundTrip, FailedWriteLeavesNoFileAndNamesThePath) {
  std::vector<float> data(4, 1.0f);
  std::string path = dir + "/missing-dir/x.safetensors";
  absl::Status status =
      writeSafetensors(path, {{"a", DType::kF32, {4}, data.data()}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_TRUE(fs::is_empty(dir));

  // Rename fails when the final name is a non-empty directory: the complete
  // temporary must still be removed.
  fs::create_directories(dir + "/taken.safetensors/inside");
  status = writeSafetensors(dir + "/taken.safetensors",
                            {{"a", DType::kF32, {4}, data.data()}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("taken.safetensors"), std::string::npos);
  for (const fs::directory_entry &entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename(), "taken.safetensors");
}

TEST_F(SafetensorsRoundTrip, SuccessfulWriteLeavesNoTemporary) {
  std::vector<float> data(4, 1.0f);
  std::string path = dir + "/ok.safetensors";
  ASSERT_TRUE(
      writeSafetensors(path, {{"a", DType::kF32, {4}, data.data()}}).ok());
  // Overwriting replaces the old file whole.
  ASSERT_TRUE(
      writeSafetensors(path, {{"b", DType::kF32, {2}, data.data()}}).ok());
  std::vector<std::string> names;
  for (const fs::directory_entry &entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"ok.safetensors"});
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors().size(), 1u);
  EXPECT_NE(file->find("b"), nullptr);
}

TEST_F(SafetensorsRoundTrip, WriterRejectsBadRequestsBeforeWriting) {
  std::vector<float> data(4, 1.0f);
  std::string path = dir + "/bad.safetensors";
  struct Case {
    const char *what;
    std::vector<TensorToWrite> tensors;
    const char *message;
  };
  std::vector<Case> cases = {
      {"duplicate",
       {{"a", DType::kF32, {4}, data.data()},
        {"a", DType::kF32, {4}, data.data()}},
       "tensor 'a' is written twice"},
      {"reserved name",
       {{"__metadata__", DType::kF32, {4}, data.data()}},
       "'__metadata__'"},
      {"negative shape", {{"n", DType::kF32, {-1}, data.data()}}, "tensor 'n'"},
      {"overflowing shape",
       {{"o", DType::kI64, {int64_t(1) << 62, 4}, data.data()}},
       "tensor 'o'"},
      {"no data", {{"z", DType::kF32, {4}, nullptr}}, "tensor 'z': no data"},
      {"not UTF-8", {{"\xff", DType::kF32, {4}, data.data()}}, "header"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    absl::Status status = writeSafetensors(path, c.tensors);
    ASSERT_FALSE(status.ok());
    std::string message(status.message());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(c.message), std::string::npos) << message;
    EXPECT_TRUE(fs::is_empty(dir));
  }
}
} // namespace
