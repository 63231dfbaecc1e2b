//===- ByteTokenizer.cpp - one token per UTF-8 byte -----------------------===//

#include "runtime/data/ByteTokenizer.h"

#include "absl/strings/str_cat.h"

namespace moert::data {

absl::StatusOr<std::vector<int32_t>>
ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (char c : text)
    ids.push_back(int32_t(uint8_t(c)));
  return ids;
}

absl::StatusOr<std::string>
ByteTokenizer::decode(absl::Span<const int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= kVocabSize)
      return absl::InvalidArgumentError(
          absl::StrCat("bytes: token id ", ids[i], " at position ", i,
                       " is outside the vocabulary [0, ", kVocabSize, ")"));
    text += ids[i] == int32_t(kEos) ? '\n' : char(uint8_t(ids[i]));
  }
  return text;
}

} // namespace moert::data
