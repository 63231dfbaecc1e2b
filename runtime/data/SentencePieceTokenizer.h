//===- SentencePieceTokenizer.h - SentencePiece models ----------*- C++ -*-===//
//
// Loads a .model file written by SentencePieceTrainer (or by
// trainSentencePiece below) and trains new ones from text files.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_SENTENCEPIECETOKENIZER_H
#define MOERT_DATA_SENTENCEPIECETOKENIZER_H

#include "runtime/data/Tokenizer.h"

namespace moert::data {

namespace spbridge {
class Processor;
} // namespace spbridge

class SentencePieceTokenizer : public Tokenizer {
public:
  /// Errors name `path`: missing, unreadable or not a model.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
  load(const std::string &path);
  ~SentencePieceTokenizer() override;

  std::string name() const override { return path_; }
  int64_t vocabSize() const override { return vocab_; }
  std::optional<uint32_t> eosId() const override { return eos_; }
  absl::StatusOr<std::vector<int32_t>>
  encode(std::string_view text) const override;
  absl::StatusOr<std::string>
  decode(absl::Span<const int32_t> ids) const override;

private:
  SentencePieceTokenizer();
  std::unique_ptr<spbridge::Processor> processor_;
  std::string path_;
  int64_t vocab_ = 0;
  std::optional<uint32_t> eos_;
};

struct SentencePieceTraining {
  std::vector<std::string> inputs; // text files, one sentence per line
  int64_t vocabSize = 0;
  std::string modelType = "bpe"; // or "unigram"
  /// Writes outPrefix.model and outPrefix.vocab.
  std::string outPrefix;
  int threads = 1;
};

/// Trains a model (ids: 0 unk, 1 bos, 2 eos, as SentencePiece assigns
/// them). Checks the inputs first, so a missing or empty file is named;
/// the two outputs appear together or not at all.
absl::Status trainSentencePiece(const SentencePieceTraining &training);

} // namespace moert::data

#endif // MOERT_DATA_SENTENCEPIECETOKENIZER_H
