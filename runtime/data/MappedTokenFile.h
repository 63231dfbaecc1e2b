//===- MappedTokenFile.h - read .tok files in place -------------*- C++ -*-===//
//
// Maps the file and validates all of it (header, document table, every id)
// before handing anything out; ids are then read straight from the mapping.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_MAPPEDTOKENFILE_H
#define MOERT_DATA_MAPPEDTOKENFILE_H

#include "runtime/base/MappedFile.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moert::data {

/// A mapped, validated .tok file. Move-only.
class MappedTokenFile {
public:
  /// Errors are one line naming the file and the field at fault.
  static absl::StatusOr<MappedTokenFile> open(const std::string &path);

  MappedTokenFile(MappedTokenFile &&) noexcept;
  MappedTokenFile &operator=(MappedTokenFile &&) noexcept;
  ~MappedTokenFile();

  const std::string &path() const { return path_; }
  uint64_t vocabSize() const { return vocab_; }
  std::optional<uint32_t> eosId() const { return eos_; }
  /// 2 (uint16 ids) or 4 (uint32 ids).
  uint32_t tokenBytes() const { return tokenBytes_; }
  int64_t tokenCount() const { return int64_t(tokens_); }
  int64_t documentCount() const { return int64_t(documents_); }

  int32_t token(int64_t index) const;
  /// Copies ids [begin, begin + count) to `out`; the range must lie inside.
  void read(int64_t begin, int64_t count, int32_t *out) const;
  /// Tokens [documentBegin(d), documentBegin(d + 1)) form document d.
  int64_t documentBegin(int64_t document) const;
  std::vector<int32_t> document(int64_t document) const;

private:
  MappedTokenFile();

  std::unique_ptr<MappedFile> mapping_;
  std::string path_;
  uint64_t vocab_ = 0, tokens_ = 0, documents_ = 0;
  uint32_t tokenBytes_ = 2;
  std::optional<uint32_t> eos_;
  const uint8_t *ids_ = nullptr;
  const uint64_t *table_ = nullptr; // documents_ + 1 offsets
};

} // namespace moert::data

#endif // MOERT_DATA_MAPPEDTOKENFILE_H
