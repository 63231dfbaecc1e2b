//===- Safetensors.h - read and write .safetensors files --------*- C++ -*-===//
//
// Reading memory-maps the file and validates the whole header before any
// tensor is handed out: tensors are zero-copy views into the mapping.
// Writing goes to a temporary file renamed into place.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CHECKPOINT_SAFETENSORS_H
#define MOERT_CHECKPOINT_SAFETENSORS_H

#include "runtime/base/DType.h"

#include "absl/status/statusor.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

class SafetensorsFile {
public:
  /// Maps and validates `path`; errors name the file and the tensor.
  static absl::StatusOr<SafetensorsFile> open(const std::string &path);

  const TensorView *find(std::string_view name) const;
  /// Tensors in the order of their data.
  const std::vector<TensorView> &tensors() const { return tensors_; }
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }
  const std::string &path() const { return path_; }

private:
  struct Mapping;
  std::shared_ptr<Mapping> mapping_;
  std::string path_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
};

/// Writes `tensors` in order (header padded to 8 bytes, as the reference
/// implementation does) to `path`, atomically.
absl::Status writeSafetensors(const std::string &path,
                              const std::vector<TensorToWrite> &tensors,
                              const std::map<std::string, std::string> &metadata = {});

} // namespace moert

#endif // MOERT_CHECKPOINT_SAFETENSORS_H
