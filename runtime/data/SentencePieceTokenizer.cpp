//===- SentencePieceTokenizer.cpp - SentencePiece models ------------------===//

#include "runtime/base/ReadFile.h"
#include "runtime/data/SentencePieceTokenizer.h"

#include "runtime/data/SentencePieceBridge.h"
#include "runtime/data/SentencePieceModelCheck.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace moert::data {

SentencePieceTokenizer::SentencePieceTokenizer()
    : processor_(std::make_unique<spbridge::Processor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
SentencePieceTokenizer::load(const std::string &path) {
  // Read here, vetted, and the same bytes handed to sentencepiece.
  absl::StatusOr<std::string> bytes = readFile(path, "the SentencePiece model");
  if (!bytes.ok())
    return bytes.status();
  if (absl::Status unsafe = checkSentencePieceCharsMaps(*bytes); !unsafe.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a SentencePiece model moec can use safely: ",
        unsafe.message()));
  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer);
  if (std::string error = tokenizer->processor_->load(*bytes); !error.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a SentencePiece model: ", error));
  tokenizer->path_ = path;
  tokenizer->vocab_ = tokenizer->processor_->pieceSize();
  if (int eos = tokenizer->processor_->eosId(); eos >= 0)
    tokenizer->eos_ = uint32_t(eos);
  return tokenizer;
}

absl::StatusOr<std::vector<int32_t>>
SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  if (std::string error = processor_->encode(text, ids); !error.empty())
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", error));
  return std::vector<int32_t>(ids.begin(), ids.end());
}

absl::StatusOr<std::string>
SentencePieceTokenizer::decode(absl::Span<const int32_t> ids) const {
  std::string text;
  std::vector<int> piece; // ids between two EOS
  auto flush = [&]() -> absl::Status {
    std::string decoded;
    if (std::string error = processor_->decode(piece, decoded); !error.empty())
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", error));
    text += decoded;
    piece.clear();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_)
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": token id ", ids[i], " at position ", i,
                       " is outside the vocabulary [0, ", vocab_, ")"));
    if (eos_ && uint32_t(ids[i]) == *eos_) {
      if (absl::Status status = flush(); !status.ok())
        return status;
      text += '\n';
      continue;
    }
    piece.push_back(ids[i]);
  }
  if (absl::Status status = flush(); !status.ok())
    return status;
  return text;
}

absl::Status trainSentencePiece(const SentencePieceTraining &training) {
  if (training.inputs.empty())
    return absl::InvalidArgumentError("no input files to train on");
  for (const std::string &input : training.inputs) {
    if (absl::Status readable = checkReadableFile(input, "a corpus");
        !readable.ok())
      return readable;
    std::ifstream file(input);
    if (file.peek() == std::ifstream::traits_type::eof())
      return absl::InvalidArgumentError(absl::StrCat(input, ": empty corpus"));
  }
  if (training.modelType != "bpe" && training.modelType != "unigram")
    return absl::InvalidArgumentError(absl::StrCat(
        "model type '", training.modelType, "' is not bpe or unigram"));
  if (training.vocabSize < 4)
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab size ", training.vocabSize, " is below 4 (unk, bos, eos, one "
        "piece)"));
  // Train under a temporary prefix beside the outputs, then rename both.
  std::string temporary = absl::StrCat(training.outPrefix, ".tmp-", getpid());
  std::string error = spbridge::train({
      {"input", absl::StrJoin(training.inputs, ",")},
      {"model_prefix", temporary},
      {"vocab_size", absl::StrCat(training.vocabSize)},
      {"model_type", training.modelType},
      {"num_threads", absl::StrCat(std::max(training.threads, 1))},
      // Errors only: its warnings would break one-line failures, and what
      // fails comes back in the returned status.
      {"minloglevel", "2"},
  });
  // The .model goes last: its presence means the pair is complete.
  std::error_code failure, ignored;
  bool vocabMoved = false;
  if (error.empty()) {
    std::filesystem::rename(temporary + ".vocab", training.outPrefix + ".vocab",
                            failure);
    vocabMoved = !failure;
    if (!failure)
      std::filesystem::rename(temporary + ".model",
                              training.outPrefix + ".model", failure);
    if (failure)
      error = absl::StrCat("cannot rename ", temporary,
                           ".{model,vocab} into place: ", failure.message());
  }
  if (!error.empty()) {
    std::filesystem::remove(temporary + ".model", ignored);
    std::filesystem::remove(temporary + ".vocab", ignored);
    if (vocabMoved)
      std::filesystem::remove(training.outPrefix + ".vocab", ignored);
    return absl::InvalidArgumentError(absl::StrCat(
        training.outPrefix, ".model: SentencePiece training failed: ", error));
  }
  return absl::OkStatus();
}

} // namespace moert::data
