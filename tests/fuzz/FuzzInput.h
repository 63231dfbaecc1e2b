//===- FuzzInput.h - helpers shared by the fuzz targets ---------*- C++ -*-===//
//
// The loaders take paths, as the tools do: an input is written to a file of
// this process's own and opened from there, so the whole path (open, stat,
// map, validate) is what gets fuzzed.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TESTS_FUZZ_FUZZINPUT_H
#define MOEC_TESTS_FUZZ_FUZZINPUT_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace moec::fuzz {

/// A directory of this process's own under the temporary directory.
inline const std::string &scratchDir() {
  static const std::string dir = [] {
    std::string path = (std::filesystem::temp_directory_path() /
                        ("moec-fuzz-" + std::to_string(getpid())))
                           .string();
    std::filesystem::create_directories(path);
    return path;
  }();
  return dir;
}

/// Writes `size` bytes to `name` in the scratch directory; returns the path.
inline std::string writeInput(const std::string &name, const uint8_t *data,
                              size_t size) {
  std::string path = scratchDir() + "/" + name;
  std::FILE *file = std::fopen(path.c_str(), "wb");
  if (!file || std::fwrite(data, 1, size, file) != size) {
    std::perror(path.c_str());
    std::abort();
  }
  std::fclose(file);
  return path;
}

} // namespace moec::fuzz

#endif // MOEC_TESTS_FUZZ_FUZZINPUT_H
