//===- TokenFile.cpp - the text token format of moe-run -------------------===//

#include "runtime/base/ReadFile.h"
#include "runtime/exec/TokenFile.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include <fstream>
#include <sstream>

namespace moert {

std::vector<int32_t> TokenBatch::padded(int64_t seq, int32_t padId) const {
  std::vector<int32_t> ids(sequences.size() * seq, padId);
  for (size_t b = 0; b < sequences.size(); ++b)
    std::copy(sequences[b].begin(), sequences[b].end(), ids.begin() + b * seq);
  return ids;
}

absl::StatusOr<TokenBatch> parseTokens(const std::string &text,
                                       const std::string &path, int64_t batch,
                                       int64_t seq, int64_t vocab) {
  TokenBatch tokens;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  while (!lines.empty() &&
         lines.back().find_first_not_of(" \t\r") == absl::string_view::npos)
    lines.pop_back(); // trailing blank lines
  for (size_t l = 0; l < lines.size(); ++l) {
    std::string where = absl::StrCat(path, ":", l + 1, ": ");
    std::vector<int32_t> sequence;
    for (absl::string_view word :
         absl::StrSplit(lines[l], absl::ByAnyChar(" \t\r"), absl::SkipEmpty())) {
      int64_t id;
      if (!absl::SimpleAtoi(word, &id))
        return absl::InvalidArgumentError(
            absl::StrCat(where, "'", word, "' is not a token id"));
      if (id < 0 || id >= vocab)
        return absl::InvalidArgumentError(absl::StrCat(
            where, "token id ", id, " at position ", sequence.size(),
            " is outside the vocabulary [0, ", vocab, ")"));
      sequence.push_back(int32_t(id));
    }
    if (sequence.empty())
      return absl::InvalidArgumentError(absl::StrCat(where, "empty sequence"));
    if (int64_t(sequence.size()) > seq)
      return absl::InvalidArgumentError(absl::StrCat(
          where, "sequence of ", sequence.size(),
          " tokens is longer than the compiled sequence length ", seq));
    tokens.sequences.push_back(std::move(sequence));
  }
  if (int64_t(tokens.sequences.size()) != batch)
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": holds ", tokens.sequences.size(),
        " sequences but the model was compiled for a batch of ", batch));
  return tokens;
}

absl::StatusOr<TokenBatch> readTokenFile(const std::string &path,
                                         int64_t batch, int64_t seq,
                                         int64_t vocab) {
  absl::StatusOr<std::string> text = readFile(path, "the token file");
  if (!text.ok())
    return text.status();
  return parseTokens(*text, path, batch, seq, vocab);
}

} // namespace moert
