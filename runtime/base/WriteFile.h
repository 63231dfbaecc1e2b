//===- WriteFile.h - write a whole file atomically --------------*- C++ -*-===//

#ifndef MOERT_BASE_WRITEFILE_H
#define MOERT_BASE_WRITEFILE_H

#include "runtime/base/OutputPath.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace moert {

/// Writes `contents` beside `path` and renames it over `path`, so a reader
/// sees the old file or the whole new one, never a part.
inline absl::Status writeFileAtomically(const std::string &path,
                                        std::string_view contents) {
  if (absl::Status refused = checkOutputFile(path); !refused.ok())
    return refused;
  std::string temporary = absl::StrCat(path, ".tmp-", getpid());
  {
    std::ofstream out(temporary, std::ios::binary);
    out.write(contents.data(), std::streamsize(contents.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      return absl::InternalError(absl::StrCat(path, ": cannot write"));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot rename into place"));
  }
  return absl::OkStatus();
}

/// Whether writeFileAtomically(path, ...) can succeed, asked before a long
/// run rather than after it: tries the temporary file it would write.
inline absl::Status checkWritableFile(const std::string &path) {
  if (absl::Status refused = checkOutputFile(path); !refused.ok())
    return refused;
  std::string temporary = absl::StrCat(path, ".tmp-", getpid());
  std::ofstream probe(temporary, std::ios::binary);
  if (!probe)
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot write here (", std::strerror(errno), ")"));
  probe.close();
  std::remove(temporary.c_str());
  return absl::OkStatus();
}

} // namespace moert

#endif // MOERT_BASE_WRITEFILE_H
