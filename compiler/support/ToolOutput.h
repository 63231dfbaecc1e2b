//===- ToolOutput.h - how moec's tools write files and fail -----*- C++ -*-===//
//
// Outputs are written whole or not at all: into a temporary file beside the
// target, then renamed over it. A write that fails (a full disk, a file-size
// limit) is one line naming the path and a non-zero exit, never LLVM's
// fatal-error path with a stack dump, and leaves no partial file behind.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_COMPILER_SUPPORT_TOOLOUTPUT_H
#define MOEC_COMPILER_SUPPORT_TOOLOUTPUT_H

#include "llvm/Support/Error.h"

namespace mlir::moe {

/// Call first in a tool's main: a write past the file-size limit then fails
/// with EFBIG instead of killing the tool (SIGXFSZ), and a fatal error from
/// LLVM (a failed write to an output stream) becomes "TOOL: error: REASON"
/// and exit 1, after removing the tool's partial output files.
void installToolErrorHandling(const char *tool);

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), or
/// to stdout for "-". A path that exists and is not a regular file (a
/// device, a pipe, a directory) is refused: the rename would replace it.
llvm::Error writeOutputFile(llvm::StringRef path, llvm::StringRef bytes);

/// The same check alone, for outputs written by other means.
llvm::Error checkOutputPath(llvm::StringRef path);

} // namespace mlir::moe

#endif // MOEC_COMPILER_SUPPORT_TOOLOUTPUT_H
