//===- Tokenizer.cpp - pick a tokenizer by name ---------------------------===//

#include "runtime/data/Tokenizer.h"

#include "runtime/data/ByteTokenizer.h"
#include "runtime/data/SentencePieceTokenizer.h"

namespace moert::data {

absl::StatusOr<std::unique_ptr<Tokenizer>>
openTokenizer(const std::string &spec) {
  if (spec == "bytes")
    return std::make_unique<ByteTokenizer>();
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> model =
      SentencePieceTokenizer::load(spec);
  if (!model.ok())
    return model.status();
  return std::unique_ptr<Tokenizer>(std::move(*model));
}

} // namespace moert::data
