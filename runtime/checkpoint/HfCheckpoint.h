//===- HfCheckpoint.h - a Hugging Face checkpoint directory -----*- C++ -*-===//

#ifndef MOERT_CHECKPOINT_HFCHECKPOINT_H
#define MOERT_CHECKPOINT_HFCHECKPOINT_H

#include "runtime/checkpoint/Safetensors.h"

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

} // namespace moert

#endif // MOERT_CHECKPOINT_HFCHECKPOINT_H
