//===- SentencePieceBridge.h - sentencepiece behind plain C++ ---*- C++ -*-===//
//
// sentencepiece's headers declare `namespace absl { using std::string_view; }`,
// which clashes with Abseil's own absl::string_view class. So they are
// included only by SentencePieceBridge.cpp, which includes no Abseil header;
// this interface passes failures back as text (empty: success).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DATA_SENTENCEPIECEBRIDGE_H
#define MOERT_DATA_SENTENCEPIECEBRIDGE_H

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
} // namespace sentencepiece

namespace moert::data::spbridge {

class Processor {
public:
  Processor();
  ~Processor();
  /// Loads a serialized ModelProto (the bytes of a .model file).
  std::string load(std::string_view serialized);
  int pieceSize() const;
  int eosId() const; // -1: none
  std::string encode(std::string_view text, std::vector<int> &ids) const;
  std::string decode(const std::vector<int> &ids, std::string &text) const;

private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

/// SentencePieceTrainer::Train with `options` as its key/value arguments.
std::string
train(const std::vector<std::pair<std::string, std::string>> &options);

} // namespace moert::data::spbridge

#endif // MOERT_DATA_SENTENCEPIECEBRIDGE_H
