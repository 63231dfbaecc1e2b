//===- ToolOutput.cpp - how moec's tools write files and fail -------------===//

#include "compiler/support/ToolOutput.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <unistd.h>

namespace mlir::moe {

namespace {
const char *toolName = "moec";

void fatalError(void *, const char *reason, bool) {
  llvm::errs() << toolName << ": error: " << reason << "\n";
  llvm::sys::RunInterruptHandlers(); // removes partial outputs
  ::_exit(1);
}

llvm::Error failure(llvm::StringRef path, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": " + what);
}

/// Writes all of `bytes` to `fd`, retrying short writes.
std::error_code writeAll(int fd, llvm::StringRef bytes) {
  const char *data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t wrote = ::write(fd, data, left);
    if (wrote < 0 && errno == EINTR)
      continue;
    if (wrote < 0)
      return std::error_code(errno, std::generic_category());
    data += wrote;
    left -= size_t(wrote);
  }
  return {};
}
} // namespace

void installToolErrorHandling(const char *tool) {
  toolName = tool;
  std::signal(SIGXFSZ, SIG_IGN);
  llvm::install_fatal_error_handler(fatalError);
}

llvm::Error checkOutputPath(llvm::StringRef path) {
  llvm::sys::fs::file_status status;
  if (path == "-" || llvm::sys::fs::status(path, status) ||
      status.type() == llvm::sys::fs::file_type::regular_file)
    return llvm::Error::success();
  return failure(path, "not a regular file; outputs are written beside "
                       "their path and renamed over it");
}

llvm::Error writeOutputFile(llvm::StringRef path, llvm::StringRef bytes) {
  if (path == "-") {
    if (std::error_code error = writeAll(STDOUT_FILENO, bytes))
      return failure("stdout", "cannot write: " + error.message());
    return llvm::Error::success();
  }
  if (llvm::Error refused = checkOutputPath(path))
    return refused;
  llvm::Expected<llvm::sys::fs::TempFile> temporary =
      llvm::sys::fs::TempFile::create(path + ".tmp-%%%%%%");
  if (!temporary)
    return failure(path, "cannot create a temporary file beside it: " +
                             llvm::toString(temporary.takeError()));
  std::error_code error = writeAll(temporary->FD, bytes);
  if (!error && ::fsync(temporary->FD) != 0)
    error = std::error_code(errno, std::generic_category());
  if (error) {
    llvm::consumeError(temporary->discard());
    return failure(path, "cannot write: " + error.message());
  }
  if (llvm::Error kept = temporary->keep(path))
    return failure(path, "cannot rename into place: " +
                             llvm::toString(std::move(kept)));
  return llvm::Error::success();
}

} // namespace mlir::moe
