//===- ScratchFiles.h - files the checkpoint tests build byte by byte -----===//

#ifndef MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H
#define MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

namespace moert::testing {

/// A fresh directory per test, removed afterwards.
class ScratchDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    const ::testing::TestInfo *test =
        ::testing::UnitTest::GetInstance()->current_test_info();
    dir = (std::filesystem::temp_directory_path() /
           (std::string("moert-") + test->test_suite_name() + "-" +
            test->name() + "-" + std::to_string(getpid())))
              .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::string dir;
};

inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// The 8-byte little-endian encoding of `value`.
inline std::string littleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = char(uint8_t(value >> (8 * i)));
  return bytes;
}

/// A safetensors file: the header JSON, then `dataBytes` bytes of data.
inline std::string withHeader(const std::string &header, size_t dataBytes) {
  return littleEndian64(header.size()) + header +
         std::string(dataBytes, '\x5a');
}

} // namespace moert::testing

#endif // MOERT_TESTS_CHECKPOINT_SCRATCHFILES_H
