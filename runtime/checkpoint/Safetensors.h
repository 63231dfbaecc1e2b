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

#include "runtime/base/MappedFile.h"

#include "absl/status/statusor.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// One tensor of a mapped file; `data` points into the mapping.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

/// A mapped, validated .safetensors file. Move-only: the views (and their
/// addresses) stay valid across moves, for as long as some owner lives.
class SafetensorsFile {
public:
  /// Maps and validates `path`; errors are one line naming the file and the
  /// tensor or field at fault.
  static absl::StatusOr<SafetensorsFile> open(const std::string &path);

  SafetensorsFile(SafetensorsFile &&) noexcept;
  SafetensorsFile &operator=(SafetensorsFile &&) noexcept;
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;
  ~SafetensorsFile();

  const TensorView *find(std::string_view name) const;
  /// All tensors, in the order of their data in the file.
  const std::vector<TensorView> &tensors() const { return tensors_; }
  auto begin() const { return tensors_.begin(); }
  auto end() const { return tensors_.end(); }
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }
  const std::string &path() const { return path_; }

private:
  SafetensorsFile();

  std::unique_ptr<MappedFile> mapping_;
  std::string path_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> byName_; // index in tensors_
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void *data = nullptr; // may be null only for empty tensors
};

/// Writes a safetensors file whose tensor data arrives piece by piece, in
/// header order, so a checkpoint larger than memory can be produced. Nothing
/// appears under the final name until finish() succeeds.
class SafetensorsStream {
public:
  /// Writes the header for `tensors` (their data pointers are ignored
  /// unless `requireData`).
  static absl::StatusOr<std::unique_ptr<SafetensorsStream>>
  create(const std::string &path, const std::vector<TensorToWrite> &tensors,
         const std::map<std::string, std::string> &metadata = {},
         bool requireData = true);
  /// The next `bytes` of tensor data.
  absl::Status append(const void *data, uint64_t bytes);
  /// Flushes and renames into place; fails unless all data was appended.
  absl::Status finish();
  ~SafetensorsStream();

private:
  SafetensorsStream() = default;
  std::string path_, temporary_;
  int fd_ = -1;
  uint64_t expected_ = 0, written_ = 0;
  bool finished_ = false;
};

/// Writes `tensors` in the given order (header padded with spaces to a
/// multiple of 8 bytes, as the reference implementation does) to
/// `path + ".tmp-<pid>"`, then renames it to `path`: a file with the final
/// name is always complete. Errors name the path and leave no file behind.
absl::Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata = {});

} // namespace moert

#endif // MOERT_CHECKPOINT_SAFETENSORS_H
