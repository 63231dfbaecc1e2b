//===- TokensFuzz.cpp - .tok token files and text token lines -------------===//
//
// The first byte picks the reader: a .tok file (mapped, validated, every
// token and document boundary read back) or the text format of moe-run's
// --tokens (parsed for a batch of 4 x 16 over a vocabulary of 300).
//
//===----------------------------------------------------------------------===//

#include "runtime/data/MappedTokenFile.h"
#include "runtime/exec/TokenFile.h"
#include "tests/fuzz/FuzzInput.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if (data[0] & 1) {
    std::string text(reinterpret_cast<const char *>(data + 1), size - 1);
    (void)moert::parseTokens(text, "input.txt", 4, 16, 300);
    return 0;
  }
  std::string path = moec::fuzz::writeInput("input.tok", data + 1, size - 1);
  absl::StatusOr<moert::data::MappedTokenFile> file =
      moert::data::MappedTokenFile::open(path);
  if (!file.ok())
    return 0;
  volatile int64_t sink = 0;
  for (int64_t i = 0; i < file->tokenCount(); ++i)
    sink = sink + file->token(i);
  for (int64_t d = 0; d <= file->documentCount(); ++d)
    sink = sink + file->documentBegin(d);
  return 0;
}
