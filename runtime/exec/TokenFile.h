//===- TokenFile.h - the text token format of moe-run -----------*- C++ -*-===//
//
// One sequence per line, token ids separated by whitespace. Sequences may be
// shorter than the compiled length (they are padded; their logits past the
// end are zero); a file must hold exactly the compiled batch of sequences.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_TOKENFILE_H
#define MOERT_EXEC_TOKENFILE_H

#include "absl/status/statusor.h"

#include <string>
#include <vector>

namespace moert {

struct TokenBatch {
  std::vector<std::vector<int32_t>> sequences;
  /// [batch, seq] row-major, padded with `padId`.
  std::vector<int32_t> padded(int64_t seq, int32_t padId = 0) const;
};

/// Parses `text` (the contents of `path`). Every error names the file, the
/// line and the offending token: non-integers, ids outside [0, vocab),
/// sequences longer than `seq`, empty sequences, a batch of the wrong size.
absl::StatusOr<TokenBatch> parseTokens(const std::string &text,
                                       const std::string &path, int64_t batch,
                                       int64_t seq, int64_t vocab);

absl::StatusOr<TokenBatch> readTokenFile(const std::string &path,
                                         int64_t batch, int64_t seq,
                                         int64_t vocab);

} // namespace moert

#endif // MOERT_EXEC_TOKENFILE_H
