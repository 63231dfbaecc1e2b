//===- ReadFile.h - whole files read into memory, errors as statuses -*- C++ -*-===//
//
// Every file the runtime reads whole goes through here. std::ifstream opens
// a directory without complaint and then throws std::ios_failure from the
// first read, which ended the tools with an uncaught exception; this reads
// through POSIX calls, checks that the path is a regular file first, and
// returns one line starting with the path for every failure.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BASE_READFILE_H
#define MOERT_BASE_READFILE_H

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace moert {

namespace detail {
/// Opens `path` for reading if it is a regular file: the descriptor, or a
/// status (NotFound when it does not exist). `what` names the file's role
/// ("the artifact"), or is empty.
inline absl::StatusOr<int> openRegularFile(const std::string &path,
                                           const std::string &what) {
  std::string role = what.empty() ? "a file" : what;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string message =
        absl::StrCat(path, ": cannot open ", role, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::PermissionDeniedError(message);
  }
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    bool directory = S_ISDIR(info.st_mode);
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", directory ? "a directory" : "not a regular file",
                     ", expected ", role));
  }
  return fd;
}
} // namespace detail

/// Whether `path` is a regular file that can be opened for reading.
inline absl::Status checkReadableFile(const std::string &path,
                                      const std::string &what = "") {
  absl::StatusOr<int> fd = detail::openRegularFile(path, what);
  if (!fd.ok())
    return fd.status();
  ::close(*fd);
  return absl::OkStatus();
}

/// The whole content of the regular file `path`.
inline absl::StatusOr<std::string> readFile(const std::string &path,
                                            const std::string &what = "") {
  absl::StatusOr<int> fd = detail::openRegularFile(path, what);
  if (!fd.ok())
    return fd.status();
  std::string content;
  char buffer[1 << 16];
  for (;;) {
    ssize_t got = ::read(*fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      std::string reason = std::strerror(errno);
      ::close(*fd);
      return absl::DataLossError(absl::StrCat(path, ": read error: ", reason));
    }
    if (got == 0)
      break;
    content.append(buffer, size_t(got));
  }
  ::close(*fd);
  return content;
}

} // namespace moert

#endif // MOERT_BASE_READFILE_H
