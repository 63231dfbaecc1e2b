//===- TokenFileWriter.h - write .tok files atomically ----------*- C++ -*-===//
//
// Ids stream to a temporary file beside the destination; finish() appends
// the document table, fills in the header, fsyncs and renames, so a file
// under the final name is always complete.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_TOKENFILEWRITER_H
#define MOERT_DATA_TOKENFILEWRITER_H

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moert::data {

class TokenFileWriter {
public:
  /// Starts `path`; ids will be uint16 when `vocabSize` <= 65536.
  static absl::StatusOr<std::unique_ptr<TokenFileWriter>>
  create(const std::string &path, uint64_t vocabSize,
         std::optional<uint32_t> eosId);
  /// Appends one document, then the EOS id when there is one and
  /// `appendEos` (false: a document cut short, as by a validation split).
  /// Ids outside the vocabulary are an error naming document and position.
  absl::Status addDocument(absl::Span<const int32_t> ids,
                           bool appendEos = true);
  /// Writes table and header, fsyncs, renames into place.
  absl::Status finish();
  /// Removes the temporary file unless finish() succeeded.
  ~TokenFileWriter();

  uint64_t tokenCount() const { return tokens_; }
  uint64_t documentCount() const { return documentEnds_.size(); }

private:
  TokenFileWriter() = default;
  absl::Status writeOut(const void *data, size_t bytes);
  absl::Status flush();
  absl::Status error(const std::string &message);

  std::string path_, temporary_;
  int fd_ = -1;
  uint64_t vocab_ = 0;
  uint32_t tokenBytes_ = 2;
  std::optional<uint32_t> eos_;
  uint64_t tokens_ = 0;
  std::vector<uint64_t> documentEnds_;
  std::string buffer_;
  absl::Status status_; // the first failure; later calls repeat it
  bool finished_ = false;
};

/// Writes `documents` to `path` in one go.
absl::Status writeTokenFile(const std::string &path, uint64_t vocabSize,
                            std::optional<uint32_t> eosId,
                            const std::vector<std::vector<int32_t>> &documents);

} // namespace moert::data

#endif // MOERT_DATA_TOKENFILEWRITER_H
