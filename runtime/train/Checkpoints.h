//===- Checkpoints.h - a run directory's periodic checkpoints ---*- C++ -*-===//
//
// `moe-run train --save OUT --save-every N --keep K` keeps, as transformers'
// Trainer does, OUT/checkpoint-STEP every N steps (each a whole checkpoint,
// written atomically), the newest K of them, and the final checkpoint in
// OUT itself. `--resume OUT` continues from the newest complete one.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TRAIN_CHECKPOINTS_H
#define MOERT_TRAIN_CHECKPOINTS_H

#include "absl/status/status.h"

#include <cstdint>
#include <string>

namespace moert::train {

/// OUT/checkpoint-STEP.
std::string periodicCheckpointDir(const std::string &runDir, int64_t step);

/// Removes all but the newest `keep` periodic checkpoints of `runDir`, each
/// renamed aside before it is deleted, so that a kill never leaves a
/// half-deleted checkpoint under a checkpoint's name.
absl::Status pruneCheckpoints(const std::string &runDir, int64_t keep);

/// The checkpoint --resume `dir` continues from: the newest by step of
/// `dir` itself and its periodic checkpoints; `dir` when it holds none.
std::string newestCheckpoint(const std::string &dir);

} // namespace moert::train

#endif // MOERT_TRAIN_CHECKPOINTS_H
