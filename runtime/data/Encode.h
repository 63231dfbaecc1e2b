//===- Encode.h - text files to .tok files ----------------------*- C++ -*-===//
//
// Each input file is one document (its ids, then EOS). With a validation
// fraction F the last round(F x tokens) ids of the concatenation go to
// OUT.val.tok instead of OUT.tok; a document straddling the cut is split
// there, its first part without EOS.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_ENCODE_H
#define MOERT_DATA_ENCODE_H

#include "runtime/data/Tokenizer.h"

#include "absl/status/statusor.h"

#include <string>
#include <vector>

namespace moert::data {

struct EncodeOptions {
  std::vector<std::string> inputs;
  std::string out; // OUT.tok
  double validationFraction = 0; // in [0, 1)
};

struct EncodeSummary {
  int64_t documents = 0;
  int64_t trainTokens = 0, validationTokens = 0;
};

/// OUT.tok -> OUT.val.tok (any other name gets ".val.tok" appended).
std::string validationPath(const std::string &out);

/// Writes OUT.tok (and OUT.val.tok when F > 0). Missing or empty inputs and
/// splits that leave either side empty are errors naming the file; on error
/// no output is left behind.
absl::StatusOr<EncodeSummary> encodeFiles(const Tokenizer &tokenizer,
                                          const EncodeOptions &options);

} // namespace moert::data

#endif // MOERT_DATA_ENCODE_H
