//===- Encode.cpp - text files to .tok files ------------------------------===//

#include "runtime/base/ReadFile.h"
#include "runtime/data/Encode.h"

#include "runtime/data/Sampler.h"
#include "runtime/data/TokenFileWriter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

namespace moert::data {

namespace {
absl::StatusOr<std::string> readText(const std::string &path) {
  absl::StatusOr<std::string> text = readFile(path, "the corpus");
  if (text.ok() && text->empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty corpus"));
  return text;
}
} // namespace

std::string validationPath(const std::string &out) {
  if (absl::EndsWith(out, ".tok"))
    return absl::StrCat(out.substr(0, out.size() - 4), ".val.tok");
  return absl::StrCat(out, ".val.tok");
}

absl::StatusOr<EncodeSummary> encodeFiles(const Tokenizer &tokenizer,
                                          const EncodeOptions &options) {
  if (options.inputs.empty())
    return absl::InvalidArgumentError("no input files to encode");
  if (!(options.validationFraction >= 0 && options.validationFraction < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("validation fraction ", options.validationFraction,
                     " is outside [0, 1)"));
  // Every document's ids, EOS included: the cut needs the total first.
  std::vector<std::vector<int32_t>> documents;
  int64_t total = 0;
  for (const std::string &input : options.inputs) {
    absl::StatusOr<std::string> text = readText(input);
    if (!text.ok())
      return text.status();
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.encode(*text);
    if (!ids.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(input, ": ", ids.status().message()));
    if (std::optional<uint32_t> eos = tokenizer.eosId())
      ids->push_back(int32_t(*eos));
    total += int64_t(ids->size());
    documents.push_back(std::move(*ids));
  }

  TokenSplit split = splitTokens(total, options.validationFraction);
  bool validating = options.validationFraction > 0;
  if (validating && (split.train.end == 0 ||
                     split.validation.end == split.validation.begin))
    return absl::InvalidArgumentError(absl::StrCat(
        options.out, ": validation fraction ", options.validationFraction,
        " of ", total, " tokens leaves ", split.train.end,
        " for training and ", total - split.train.end, " for validation"));

  std::vector<std::unique_ptr<TokenFileWriter>> writers;
  for (const std::string &path :
       validating ? std::vector<std::string>{options.out,
                                             validationPath(options.out)}
                  : std::vector<std::string>{options.out}) {
    absl::StatusOr<std::unique_ptr<TokenFileWriter>> writer =
        TokenFileWriter::create(path, uint64_t(tokenizer.vocabSize()),
                                tokenizer.eosId());
    if (!writer.ok())
      return writer.status();
    writers.push_back(std::move(*writer));
  }
  // EOS is already in the ids; a cut document's halves carry it as is.
  int64_t start = 0;
  for (const std::vector<int32_t> &ids : documents) {
    int64_t end = start + int64_t(ids.size());
    int64_t cut = std::clamp(split.train.end - start, int64_t(0),
                             int64_t(ids.size()));
    absl::Span<const int32_t> all(ids);
    if (cut > 0)
      if (absl::Status s = writers[0]->addDocument(all.subspan(0, cut), false);
          !s.ok())
        return s;
    if (cut < int64_t(ids.size()))
      if (absl::Status s = writers[1]->addDocument(all.subspan(cut), false);
          !s.ok())
        return s;
    start = end;
  }
  // The validation file first: should OUT.tok then fail, remove it again.
  if (validating)
    if (absl::Status status = writers[1]->finish(); !status.ok())
      return status;
  if (absl::Status status = writers[0]->finish(); !status.ok()) {
    if (validating)
      std::remove(validationPath(options.out).c_str());
    return status;
  }
  return EncodeSummary{int64_t(documents.size()), split.train.end,
                       total - split.train.end};
}

} // namespace moert::data
