//===- HfCheckpoint.h - a Hugging Face checkpoint directory -----*- C++ -*-===//

#ifndef MOERT_CHECKPOINT_HFCHECKPOINT_H
#define MOERT_CHECKPOINT_HFCHECKPOINT_H

#include "runtime/checkpoint/Safetensors.h"

#include <functional>
#include <map>

namespace moert {

/// The tensors of a directory holding `model.safetensors`, or the shards
/// listed in `model.safetensors.index.json`. Every shard is opened once and
/// must hold exactly the tensors the index lists for it; no tensor may be in
/// two shards. Move-only, like the files it maps.
class HfCheckpoint {
public:
  static absl::StatusOr<HfCheckpoint> open(const std::string &dir);

  HfCheckpoint(HfCheckpoint &&) = default;
  HfCheckpoint &operator=(HfCheckpoint &&) = default;
  HfCheckpoint(const HfCheckpoint &) = delete;
  HfCheckpoint &operator=(const HfCheckpoint &) = delete;

  const TensorView *find(std::string_view name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// The file holding `name`, for messages.
  std::string describe(std::string_view name) const;

private:
  HfCheckpoint() = default;

  std::vector<SafetensorsFile> files_;
  // name -> (index in files_, view inside that file)
  std::map<std::string, std::pair<size_t, const TensorView *>, std::less<>>
      index_;
};

/// Writes a Hugging Face checkpoint directory atomically: `writeTensors`
/// writes the weights (WeightShards.h) and any other files into the
/// temporary directory it is given, config.json gets `configJson`, then the
/// directory is renamed to `dir`; an existing `dir` (which checkReplaceable
/// must allow) is swapped with it in one rename, its periodic checkpoints
/// (`checkpoint-N` directories, as a training run keeps them) carried over.
/// On failure nothing is left behind; after a kill, `dir` is the previous
/// checkpoint or the new one, complete either way.
///
/// checkReplaceable is OK when `dir` does not exist or holds only what moec
/// writes into a checkpoint directory (so replacing it loses nothing else);
/// otherwise an error naming the first foreign entry.
absl::Status checkReplaceable(const std::string &dir);

/// "checkpoint-12": a periodic checkpoint of a run directory; with
/// `staging`, "checkpoint-12.tmp-PID" or ".old-PID", one being written or
/// removed.
bool isPeriodicCheckpointName(std::string_view name, bool staging = false);

absl::Status writeCheckpointDirectory(
    const std::string &dir, const std::string &configJson,
    const std::function<absl::Status(const std::string &staging)>
        &writeTensors);

} // namespace moert

#endif // MOERT_CHECKPOINT_HFCHECKPOINT_H
