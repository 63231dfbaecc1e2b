//===- ByteTokenizer.h - one token per UTF-8 byte ---------------*- C++ -*-===//
//
// Ids 0..255 are the bytes of the text, 256 is EOS: a vocabulary of 257.
// The EOS id marks document boundaries in packed training windows, as it
// does with SentencePiece models, so both tokenizers pack the same way.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_BYTETOKENIZER_H
#define MOERT_DATA_BYTETOKENIZER_H

#include "runtime/data/Tokenizer.h"

namespace moert::data {

class ByteTokenizer : public Tokenizer {
public:
  static constexpr uint32_t kEos = 256;
  static constexpr int64_t kVocabSize = 257;

  std::string name() const override { return "bytes"; }
  int64_t vocabSize() const override { return kVocabSize; }
  std::optional<uint32_t> eosId() const override { return kEos; }
  absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const override;
  absl::StatusOr<std::string>
  decode(absl::Span<const int32_t> ids) const override;
};

} // namespace moert::data

#endif // MOERT_DATA_BYTETOKENIZER_H
