//===- OutputPath.h - where the runtime's tools may write --------*- C++ -*-===//
//
// Outputs are written beside their path and renamed over it, so a reader
// never sees half a file. Renaming over a device or a pipe would replace
// it (as root, /dev/full became a regular file), so such paths are refused.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BASE_OUTPUTPATH_H
#define MOERT_BASE_OUTPUTPATH_H

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <string>
#include <sys/stat.h>

namespace moert {

/// OK when `path` does not exist or is a regular file.
inline absl::Status checkOutputFile(const std::string &path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || S_ISREG(info.st_mode))
    return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not a regular file; outputs are written beside "
                         "their path and renamed over it"));
}

} // namespace moert

#endif // MOERT_BASE_OUTPUTPATH_H
