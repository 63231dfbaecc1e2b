//===- ContinuationText.h - the text a continuation adds --------*- C++ -*-===//
//
// A continuation decoded on its own loses the space that SentencePiece
// drops at the start of a text, and a token decoded on its own loses it
// every time. So the prompt and the continuation are decoded together and
// the prompt's own text is cut off the front, as transformers' TextStreamer
// does. A UTF-8 character split across byte-fallback tokens is held back
// until its last byte arrives.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_CONTINUATIONTEXT_H
#define MOERT_DATA_CONTINUATIONTEXT_H

#include "runtime/data/Tokenizer.h"

namespace moert::data {

class ContinuationText {
public:
  ContinuationText(const Tokenizer &tokenizer, std::vector<int32_t> prompt);

  /// Appends `token` and returns the text it completes (may be empty).
  absl::StatusOr<std::string> append(int32_t token);
  /// The text not yet returned by append, incomplete characters included.
  absl::StatusOr<std::string> rest();
  /// The whole continuation's text.
  absl::StatusOr<std::string> text() const;

private:
  const Tokenizer &tokenizer;
  std::vector<int32_t> ids; // prompt, then continuation
  size_t promptTokens;
  std::string promptText;
  size_t returned = 0; // bytes of the continuation's text given out
  absl::Status promptStatus;
};

} // namespace moert::data

#endif // MOERT_DATA_CONTINUATIONTEXT_H
