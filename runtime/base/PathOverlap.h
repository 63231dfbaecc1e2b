//===- PathOverlap.h - outputs that would destroy an input ------*- C++ -*-===//
//
// An output replaces its path whole (a file renamed over it, a checkpoint
// directory swapped in), so an output that is one of the command's inputs,
// or a directory holding one, destroys that input: `moec upcycle DENSE -o
// DENSE` replaced the dense checkpoint with the MoE. Every tool that writes
// checks its outputs against its inputs with this first. Standard library
// only, so the compiler's tools use it too.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BASE_PATHOVERLAP_H
#define MOERT_BASE_PATHOVERLAP_H

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace moert {

/// The first of `inputs` (empty ones skipped) that writing `output` would
/// overwrite or delete: the output itself, or a path inside it. Empty when
/// there is none. Symbolic links and relative paths are resolved first.
inline std::string inputOverwrittenBy(const std::string &output,
                                      const std::vector<std::string> &inputs) {
  namespace fs = std::filesystem;
  auto resolve = [](const std::string &path) {
    std::error_code error;
    fs::path resolved = fs::weakly_canonical(path, error);
    if (error)
      resolved = fs::absolute(path, error).lexically_normal();
    while (!resolved.has_filename() && resolved.has_relative_path())
      resolved = resolved.parent_path(); // "dir/" is "dir"
    return resolved;
  };
  if (output.empty() || output == "-")
    return "";
  fs::path out = resolve(output);
  for (const std::string &input : inputs) {
    if (input.empty() || input == "-")
      continue;
    fs::path in = resolve(input);
    if (std::mismatch(out.begin(), out.end(), in.begin(), in.end()).first ==
        out.end())
      return input;
  }
  return "";
}

/// `paths` with, for each that is a directory, the files directly inside
/// it: a checkpoint directory's inputs are its files, which an output
/// written inside the directory may replace.
inline std::vector<std::string>
withFilesInside(const std::vector<std::string> &paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> all;
  for (const std::string &path : paths) {
    all.push_back(path);
    std::error_code error;
    if (path.empty() || !fs::is_directory(path, error))
      continue;
    for (const fs::directory_entry &entry :
         fs::directory_iterator(path, error))
      all.push_back(entry.path().string());
  }
  return all;
}

/// The one-line message for such an output.
inline std::string overwritesInputMessage(const std::string &output,
                                          const std::string &input) {
  return output == input
             ? output + ": the output is also an input; choose another path"
             : output + ": the output would replace " + input +
                   ", an input of this command; choose another path";
}

} // namespace moert

#endif // MOERT_BASE_PATHOVERLAP_H
