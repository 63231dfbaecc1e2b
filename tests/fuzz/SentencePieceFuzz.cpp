//===- SentencePieceFuzz.cpp - SentencePiece models as moe-data loads them -===//
//
// A model file through SentencePieceTokenizer::load (moe-data's path), and,
// when it loads, a round trip of a short text through it.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/SentencePieceTokenizer.h"
#include "tests/fuzz/FuzzInput.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = moec::fuzz::writeInput("input.model", data, size);
  auto tokenizer = moert::data::SentencePieceTokenizer::load(path);
  if (!tokenizer.ok())
    return 0;
  auto ids = (*tokenizer)->encode("Call me Ishmael. 12 \xc3\xa9t\xc3\xa9");
  if (ids.ok())
    (void)(*tokenizer)->decode(*ids);
  return 0;
}
