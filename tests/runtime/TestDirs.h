//===- TestDirs.h - scratch directories for the runtime tests -------------===//

#ifndef MOERT_TESTS_RUNTIME_TESTDIRS_H
#define MOERT_TESTS_RUNTIME_TESTDIRS_H

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

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

  /// The names in `dir`, sorted: what a failed write left behind.
  std::vector<std::string> listDir() const {
    std::vector<std::string> names;
    for (const auto &entry : std::filesystem::directory_iterator(dir))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir;
};

inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

} // namespace moert::testing

#endif // MOERT_TESTS_RUNTIME_TESTDIRS_H
