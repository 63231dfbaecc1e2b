//===- Tokenizer.h - text to token ids and back -----------------*- C++ -*-===//
//
// The two tokenizers of moe-data: "bytes" (ByteTokenizer.h) and a
// SentencePiece model file (SentencePieceTokenizer.h).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_TOKENIZER_H
#define MOERT_DATA_TOKENIZER_H

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moert::data {

class Tokenizer {
public:
  virtual ~Tokenizer() = default;
  /// "bytes" or the model's path: what --tokenizer named.
  virtual std::string name() const = 0;
  virtual int64_t vocabSize() const = 0;
  /// Appended after each document when present.
  virtual std::optional<uint32_t> eosId() const = 0;
  virtual absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const = 0;
  /// Ids outside the vocabulary are an error; EOS decodes to a newline.
  virtual absl::StatusOr<std::string>
  decode(absl::Span<const int32_t> ids) const = 0;
};

/// "bytes" gives the ByteTokenizer, anything else is loaded as a
/// SentencePiece model file.
absl::StatusOr<std::unique_ptr<Tokenizer>>
openTokenizer(const std::string &spec);

} // namespace moert::data

#endif // MOERT_DATA_TOKENIZER_H
