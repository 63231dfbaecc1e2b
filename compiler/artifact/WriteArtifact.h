//===- WriteArtifact.h - serialise a compiled model to .moex ----*- C++ -*-===//

#ifndef MOEC_ARTIFACT_WRITEARTIFACT_H
#define MOEC_ARTIFACT_WRITEARTIFACT_H

#include "compiler/artifact/BufferPlan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <utility>
#include <vector>

namespace mlir::moe {

/// One program of the artifact, for reports.
struct ProgramSummary {
  func::FuncOp function;
  BufferPlan plan;
  /// The kernels chosen for its ops: name and count, in order of first use.
  std::vector<std::pair<std::string, int64_t>> kernels;
};

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
  /// The key/value caches of a generation artifact (0 without).
  int64_t cacheBytes = 0;
  /// @forward (or @prefill and @decode_step), then @initialize and
  /// @train_step where the module has them.
  std::vector<ProgramSummary> programs;
};

/// Writes `module` (with a static-shaped @forward, after
/// moe-specialize-shapes, or @prefill and @decode_step after moe-generate)
/// to `path` atomically: a temporary file renamed
/// into place, its activations stored as `storage` says. Reports problems as
/// diagnostics on the offending op.
FailureOr<ArtifactSummary> writeArtifact(ModuleOp module, StringRef path,
                                         ActivationStorage storage = {});

} // namespace mlir::moe

#endif // MOEC_ARTIFACT_WRITEARTIFACT_H
