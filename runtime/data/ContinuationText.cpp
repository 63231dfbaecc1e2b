//===- ContinuationText.cpp - the text a continuation adds ----------------===//

#include "runtime/data/ContinuationText.h"

#include "absl/strings/match.h"

namespace moert::data {
namespace {
/// The length of `text` without a trailing UTF-8 character whose
/// continuation bytes have not all arrived.
size_t completeLength(const std::string &text) {
  size_t size = text.size();
  // A lead byte within the last 3 bytes announces the character's length.
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    unsigned char byte = text[size - back];
    if ((byte & 0xC0) == 0x80)
      continue; // a continuation byte: look further back
    size_t needed = (byte & 0xE0) == 0xC0   ? 2
                    : (byte & 0xF0) == 0xE0 ? 3
                    : (byte & 0xF8) == 0xF0 ? 4
                                            : 1;
    return needed > back ? size - back : size;
  }
  return size;
}
} // namespace

ContinuationText::ContinuationText(const Tokenizer &tokenizer,
                                   std::vector<int32_t> prompt)
    : tokenizer(tokenizer), ids(std::move(prompt)), promptTokens(ids.size()) {
  absl::StatusOr<std::string> decoded = tokenizer.decode(ids);
  if (decoded.ok())
    promptText = std::move(*decoded);
  else
    promptStatus = decoded.status();
}

absl::StatusOr<std::string> ContinuationText::text() const {
  if (!promptStatus.ok())
    return promptStatus;
  absl::StatusOr<std::string> whole = tokenizer.decode(ids);
  if (!whole.ok())
    return whole.status();
  if (absl::StartsWith(*whole, promptText))
    return whole->substr(promptText.size());
  // The prompt's last piece merged with the continuation's first when
  // decoded together (no tokenizer here does): the continuation alone.
  return tokenizer.decode(absl::MakeConstSpan(ids).subspan(promptTokens));
}

absl::StatusOr<std::string> ContinuationText::append(int32_t token) {
  ids.push_back(token);
  absl::StatusOr<std::string> whole = text();
  if (!whole.ok())
    return whole.status();
  size_t complete = completeLength(*whole);
  if (complete <= returned)
    return std::string();
  std::string piece = whole->substr(returned, complete - returned);
  returned = complete;
  return piece;
}

absl::StatusOr<std::string> ContinuationText::rest() {
  absl::StatusOr<std::string> whole = text();
  if (!whole.ok())
    return whole.status();
  std::string piece = whole->size() > returned ? whole->substr(returned) : "";
  returned = whole->size();
  return piece;
}

} // namespace moert::data
