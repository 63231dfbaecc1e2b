//===- SentencePieceBridge.cpp - sentencepiece behind plain C++ -----------===//
//
// Must not include Abseil headers (see SentencePieceBridge.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/data/SentencePieceBridge.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

namespace moert::data::spbridge {

namespace {
std::string errorOf(const sentencepiece::util::Status &status) {
  return status.ok() ? std::string() : status.ToString();
}
} // namespace

Processor::Processor()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Processor::~Processor() = default;

std::string Processor::load(std::string_view serialized) {
  return errorOf(processor_->LoadFromSerializedProto(serialized));
}

int Processor::pieceSize() const { return processor_->GetPieceSize(); }

int Processor::eosId() const { return processor_->eos_id(); }

std::string Processor::encode(std::string_view text,
                              std::vector<int> &ids) const {
  return errorOf(processor_->Encode(text, &ids));
}

std::string Processor::decode(const std::vector<int> &ids,
                              std::string &text) const {
  return errorOf(processor_->Decode(ids, &text));
}

std::string
train(const std::vector<std::pair<std::string, std::string>> &options) {
  std::unordered_map<std::string, std::string> arguments(options.begin(),
                                                         options.end());
  return errorOf(sentencepiece::SentencePieceTrainer::Train(arguments));
}

} // namespace moert::data::spbridge
