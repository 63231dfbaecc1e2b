//===- Artifact.h - load and verify a .moex artifact ------------*- C++ -*-===//
//
// An Artifact owns the bytes of a .moex file that passed both the FlatBuffers
// verifier (every offset in bounds) and a semantic check (every index, shape
// and byte count consistent), so the executor can trust what it reads.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ARTIFACT_ARTIFACT_H
#define MOERT_ARTIFACT_ARTIFACT_H

#include "runtime/base/DType.h"

#include "moex_generated.h"

#include "absl/status/statusor.h"

#include <string>
#include <vector>

namespace moert {

/// Incremented on every incompatible change of moex.fbs.
inline constexpr uint32_t kFormatVersion = 4;

DType fromSchema(fb::DType type);
fb::DType toSchema(DType type);

/// Number of elements of a shape (1 for a scalar), -1 on overflow or a
/// negative dimension.
int64_t numElements(const flatbuffers::Vector<int64_t> &shape);

/// Every program of `model` that is present: forward, initialize, the
/// training step, prefill and decode_step, in that order.
std::vector<const fb::Program *> programsOf(const fb::Model &model);

class Artifact {
public:
  /// Reads and verifies `path`; errors name the file and what is wrong.
  static absl::StatusOr<Artifact> load(const std::string &path);
  /// Verifies `bytes` (the contents of a file called `name`).
  static absl::StatusOr<Artifact> fromBytes(std::vector<uint8_t> bytes,
                                            const std::string &name);

  const fb::Model &model() const { return *fb::GetModel(bytes_.data()); }
  const std::string &path() const { return path_; }

private:
  Artifact(std::vector<uint8_t> bytes, std::string path)
      : bytes_(std::move(bytes)), path_(std::move(path)) {}

  std::vector<uint8_t> bytes_;
  std::string path_;
};

} // namespace moert

#endif // MOERT_ARTIFACT_ARTIFACT_H
