//===- TrainData.h - where training batches come from -----------*- C++ -*-===//
//
// Two sources behind one interface: a .tok file made by moe-data (packed
// windows of seq + 1 ids, shuffled per epoch by seed, every position
// predicted) or the text format of moe-run (one sequence per line, up to
// seq + 1 ids, padding labelled -100; lines are taken in order, cycling).
// Both can report and restore their position, so a resumed run sees exactly
// the batches the interrupted one would have.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TRAIN_TRAINDATA_H
#define MOERT_TRAIN_TRAINDATA_H

#include "runtime/train/Trainer.h"

#include <nlohmann/json.hpp>

namespace moert::train {

class BatchSource {
public:
  virtual ~BatchSource() = default;
  virtual Batch next() = 0;
  virtual nlohmann::json state() const = 0;
  virtual absl::Status restore(const nlohmann::json &state) = 0;
};

/// Opens `path` (a .tok file when it starts with the token-file magic,
/// else text) for batches of [batch, seq]. `shuffle` and `seed` apply to
/// token files. Ids at or above `vocab` are an error naming the file.
absl::StatusOr<std::unique_ptr<BatchSource>>
openBatchSource(const std::string &path, int64_t batch, int64_t seq,
                int64_t vocab, uint64_t seed, bool shuffle);

/// Rank `rank`'s part of `global`, whose batches hold `ranks` blocks of
/// this rank's batch: the r-th contiguous block of each (the data contract
/// of an expert-parallel run, under which N ranks read what one process
/// with N times the batch reads).
std::unique_ptr<BatchSource> rankBlocks(std::unique_ptr<BatchSource> global,
                                        int rank, int ranks);

} // namespace moert::train

#endif // MOERT_TRAIN_TRAINDATA_H
