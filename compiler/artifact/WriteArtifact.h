//===- WriteArtifact.h - serialise a compiled model to .moex ----*- C++ -*-===//

#ifndef MOEC_ARTIFACT_WRITEARTIFACT_H
#define MOEC_ARTIFACT_WRITEARTIFACT_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

struct ArtifactSummary {
  int64_t params = 0;
  int64_t paramBytes = 0;
  int64_t kernels = 0;
  int64_t arenaBytes = 0;
  int64_t unplannedBytes = 0;
  /// Arena the initialisation program needs (0 without one).
  int64_t initArenaBytes = 0;
  /// Arena the training step needs (0 without one): its activation memory,
  /// forward values kept for the backward pass included.
  int64_t trainArenaBytes = 0;
  int64_t trainUnplannedBytes = 0;
  /// Its peak of live activations, and its results (losses, gradients).
  int64_t trainActivationBytes = 0;
  int64_t trainResultBytes = 0;
};

/// Writes `module` (with a static-shaped @forward, after
/// moe-specialize-shapes) to `path` atomically: a temporary file renamed
/// into place. Reports problems as diagnostics on the offending op.
FailureOr<ArtifactSummary> writeArtifact(ModuleOp module, StringRef path);

} // namespace mlir::moe

#endif // MOEC_ARTIFACT_WRITEARTIFACT_H
