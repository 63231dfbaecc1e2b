//===- SentencePieceModelCheck.h - vet a model before sentencepiece --*- C++ -*-===//
//
// sentencepiece trusts the normaliser's precompiled character map of the
// models it loads: a Darts double-array trie whose offsets and leaf values
// are followed without bounds checks when text is normalised (Debian 12's
// 0.1.97; upstream bounds them from 2026 on). A crafted model then reads
// out of bounds on the first encode, which fuzzing found. The maps of a
// serialized ModelProto are checked here first: every node reachable from
// the trie's root must keep all 256 transitions and its leaf inside the
// array, and every leaf value must point into a NUL-terminated block of
// replacement strings.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_SENTENCEPIECEMODELCHECK_H
#define MOERT_DATA_SENTENCEPIECEMODELCHECK_H

#include "absl/status/status.h"

#include <string_view>

namespace moert::data {

/// OK when the normaliser and denormaliser maps of `model` (a serialized
/// ModelProto) are safe to use; otherwise an error naming the field.
absl::Status checkSentencePieceCharsMaps(std::string_view model);

} // namespace moert::data

#endif // MOERT_DATA_SENTENCEPIECEMODELCHECK_H
