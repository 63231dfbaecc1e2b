//===- moe-data.cpp - prepare training data -------------------------------===//
//
//   moe-data train-tokenizer --input FILE[,FILE...] --vocab-size N
//            [--model-type bpe|unigram] --out PREFIX
//   moe-data encode --tokenizer bytes|PATH.model --input FILE[,FILE...]
//            --out OUT.tok [--validation-fraction F]
//   moe-data info FILE.tok
//   moe-data decode --tokenizer bytes|PATH.model FILE.tok [--limit N]
//
// Tokenizers and the .tok format are described in docs/data.md. Every error
// is one line on stderr and exit status 1; outputs appear complete or not
// at all.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Printable.h"
#include "runtime/base/PathOverlap.h"
#include "runtime/data/Encode.h"
#include "runtime/data/MappedTokenFile.h"
#include "runtime/data/SentencePieceTokenizer.h"
#include "runtime/data/Tokenizer.h"

#include "runtime/tools/DashedFlags.h"

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include <csignal>
#include <algorithm>
#include <iostream>
#include <thread>

ABSL_FLAG(std::string, input, "", "comma-separated text files");
ABSL_FLAG(std::string, out, "",
          "train-tokenizer: model prefix (writes PREFIX.model, PREFIX.vocab); "
          "encode: the .tok file");
ABSL_FLAG(int64_t, vocab_size, 0, "train-tokenizer: vocabulary size");
ABSL_FLAG(std::string, model_type, "bpe", "train-tokenizer: bpe or unigram");
ABSL_FLAG(int, threads, 0, "train-tokenizer: threads (0: all cores)");
ABSL_FLAG(std::string, tokenizer, "",
          "'bytes' (257 ids, EOS 256) or a SentencePiece .model file");
ABSL_FLAG(double, validation_fraction, 0,
          "encode: put the last F of the tokens in OUT.val.tok");
ABSL_FLAG(int64_t, limit, 0, "decode: at most N tokens (0: all)");

namespace {
using namespace moert::data;

constexpr const char *kUsage =
    "moe-data train-tokenizer --input FILES --vocab-size N "
    "[--model-type bpe|unigram] --out PREFIX\n"
    "  moe-data encode --tokenizer bytes|PATH.model --input FILES --out "
    "OUT.tok [--validation-fraction F]\n"
    "  moe-data info FILE.tok\n"
    "  moe-data decode --tokenizer bytes|PATH.model FILE.tok [--limit N]";

int fail(const absl::Status &status) {
  std::cerr << "moe-data: error: " << moert::printable(status.message())
            << "\n";
  return 1;
}

int fail(const std::string &message) {
  return fail(absl::InvalidArgumentError(message));
}

std::vector<std::string> inputs() {
  return absl::StrSplit(absl::GetFlag(FLAGS_input), ',', absl::SkipEmpty());
}

/// The error for the first of `outputs` that would replace one of
/// `inputs`, or an empty string.
std::string overwrittenInput(const std::vector<std::string> &outputs,
                             const std::vector<std::string> &inputs) {
  for (const std::string &output : outputs)
    if (std::string input = moert::inputOverwrittenBy(output, inputs); !input.empty())
      return moert::overwritesInputMessage(output, input);
  return "";
}

int trainTokenizer() {
  SentencePieceTraining training;
  training.inputs = inputs();
  training.vocabSize = absl::GetFlag(FLAGS_vocab_size);
  training.modelType = absl::GetFlag(FLAGS_model_type);
  training.outPrefix = absl::GetFlag(FLAGS_out);
  int threads = absl::GetFlag(FLAGS_threads);
  training.threads =
      threads > 0 ? threads : int(std::thread::hardware_concurrency());
  if (training.inputs.empty() || training.outPrefix.empty() ||
      training.vocabSize <= 0)
    return fail("train-tokenizer needs --input, --vocab-size and --out");
  if (std::string error = overwrittenInput({training.outPrefix + ".model",
                                            training.outPrefix + ".vocab"},
                                           training.inputs);
      !error.empty())
    return fail(error);
  if (absl::Status status = trainSentencePiece(training); !status.ok())
    return fail(status);
  std::cout << "tokenizer: " << training.outPrefix << ".model ("
            << training.vocabSize << " pieces, " << training.modelType
            << ")\n";
  return 0;
}

int encode() {
  EncodeOptions options;
  options.inputs = inputs();
  options.out = absl::GetFlag(FLAGS_out);
  options.validationFraction = absl::GetFlag(FLAGS_validation_fraction);
  std::string spec = absl::GetFlag(FLAGS_tokenizer);
  if (spec.empty() || options.inputs.empty() || options.out.empty())
    return fail("encode needs --tokenizer, --input and --out");
  std::vector<std::string> read = options.inputs;
  read.push_back(spec);
  if (std::string error = overwrittenInput(
          {options.out, validationPath(options.out)}, read);
      !error.empty())
    return fail(error);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = openTokenizer(spec);
  if (!tokenizer.ok())
    return fail(tokenizer.status());
  absl::StatusOr<EncodeSummary> summary = encodeFiles(**tokenizer, options);
  if (!summary.ok())
    return fail(summary.status());
  std::cout << options.out << ": " << summary->trainTokens << " tokens from "
            << summary->documents << " documents\n";
  if (options.validationFraction > 0)
    std::cout << validationPath(options.out) << ": "
              << summary->validationTokens << " tokens\n";
  return 0;
}

int info(const std::string &path) {
  absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
  if (!file.ok())
    return fail(file.status());
  std::cout << "file: " << path << "\n"
            << "vocab_size: " << file->vocabSize() << "\n"
            << "dtype: " << (file->tokenBytes() == 2 ? "uint16" : "uint32")
            << "\n"
            << "eos_id: "
            << (file->eosId() ? std::to_string(*file->eosId()) : "none")
            << "\n"
            << "tokens: " << file->tokenCount() << "\n"
            << "documents: " << file->documentCount() << "\n";
  return 0;
}

int decode(const std::string &path) {
  std::string spec = absl::GetFlag(FLAGS_tokenizer);
  if (spec.empty())
    return fail("decode needs --tokenizer");
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = openTokenizer(spec);
  if (!tokenizer.ok())
    return fail(tokenizer.status());
  absl::StatusOr<MappedTokenFile> file = MappedTokenFile::open(path);
  if (!file.ok())
    return fail(file.status());
  if (int64_t(file->vocabSize()) != (*tokenizer)->vocabSize())
    return fail(absl::StrCat(path, ": vocab_size ", file->vocabSize(),
                             " differs from the tokenizer's ",
                             (*tokenizer)->vocabSize(), " (", spec, ")"));
  int64_t limit = absl::GetFlag(FLAGS_limit);
  int64_t count = limit > 0 ? std::min(limit, file->tokenCount())
                            : file->tokenCount();
  std::vector<int32_t> ids(static_cast<size_t>(count));
  file->read(0, count, ids.data());
  absl::StatusOr<std::string> text = (*tokenizer)->decode(ids);
  if (!text.ok())
    return fail(text.status());
  std::cout << *text;
  if (!text->empty() && text->back() != '\n')
    std::cout << "\n";
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  // A write past the file-size limit fails with EFBIG, reported like any
  // other write error, instead of killing the tool.
  std::signal(SIGXFSZ, SIG_IGN);
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> positional = moert::parseDashedFlags(argc, argv);
  std::string command = positional.size() > 1 ? positional[1] : "";
  size_t operands = positional.size() - std::min<size_t>(positional.size(), 2);
  bool takesFile = command == "info" || command == "decode";
  if (command != "train-tokenizer" && command != "encode" && !takesFile)
    return fail(absl::StrCat("expected a command: train-tokenizer, encode, "
                             "info or decode",
                             command.empty() ? "" : " (got '" + command + "')",
                             "; see --help"));
  if (operands != (takesFile ? 1u : 0u))
    return fail(absl::StrCat(command, " takes ",
                             takesFile ? "one FILE.tok" : "no operands",
                             "; see --help"));
  if (command == "train-tokenizer")
    return trainTokenizer();
  if (command == "encode")
    return encode();
  if (command == "info")
    return info(positional[2]);
  return decode(positional[2]);
}
