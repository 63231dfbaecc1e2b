//===- StreamTest.cpp - safetensors written piece by piece ----------------===//

#include "runtime/checkpoint/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <unistd.h>

using namespace moert;
namespace fs = std::filesystem;

namespace {
TEST(SafetensorsStreamTest, DataArrivesInPiecesAndReadsBack) {
  std::string dir = (fs::temp_directory_path() /
                     ("moert-stream-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  std::string path = dir + "/m.safetensors";
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8};
  auto stream = SafetensorsStream::create(
      path, {{"a", DType::kF32, {2, 3}, nullptr}, {"b", DType::kF32, {2}, nullptr}},
      {}, /*requireData=*/false);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_TRUE((*stream)->append(a.data(), 8).ok()); // part of "a"
  ASSERT_TRUE((*stream)->append(a.data() + 2, 16).ok());
  EXPECT_FALSE(fs::exists(path)); // nothing under the final name yet
  ASSERT_TRUE((*stream)->append(b.data(), 8).ok());
  EXPECT_FALSE((*stream)->append(b.data(), 4).ok()); // more than announced
  ASSERT_TRUE((*stream)->finish().ok());
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(std::memcmp(file->find("a")->data, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(file->find("b")->data, b.data(), 8), 0);

  // An unfinished stream leaves neither the file nor its temporary.
  {
    auto partial = SafetensorsStream::create(
        dir + "/p.safetensors", {{"a", DType::kF32, {2}, nullptr}}, {}, false);
    ASSERT_TRUE(partial.ok());
    ASSERT_TRUE((*partial)->append(a.data(), 4).ok());
    EXPECT_FALSE((*partial)->finish().ok()); // 4 of 8 bytes
  }
  EXPECT_FALSE(fs::exists(dir + "/p.safetensors"));
  size_t files = 0;
  for ([[maybe_unused]] const auto &entry : fs::directory_iterator(dir))
    ++files;
  EXPECT_EQ(files, 1u);
  fs::remove_all(dir);
}
} // namespace
