//===- HfCheckpoint.h - a Hugging Face checkpoint directory -----*- C++ -*-===//

#ifndef MOERT_CHECKPOINT_HFCHECKPOINT_H
#define MOERT_CHECKPOINT_HFCHECKPOINT_H

#include "runtime/checkpoint/Safetensors.h"

#include <map>

namespace moert {

/// The tensors of a directory holding `model.safetensors`, or the shards
/// listed in `model.safetensors.index.json`.
class HfCheckpoint {
public:
  static absl::StatusOr<HfCheckpoint> open(const std::string &dir);

  const TensorView *find(std::string_view name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// The file holding `name`, for messages.
  std::string describe(std::string_view name) const;

private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<size_t, const TensorView *>, std::less<>> index_;
};

} // namespace moert

#endif // MOERT_CHECKPOINT_HFCHECKPOINT_H
