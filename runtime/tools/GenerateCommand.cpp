//===- GenerateCommand.cpp - moe-run generate -----------------------------===//
//
//   moe-run generate MODEL.moex (--weights DIR | --seed N) --prompts FILE
//           --max-new-tokens N [--temperature T] [--top-k K] [--top-p P]
//           [--seed S] [--eos ID] [--tokenizer T.model] [--out FILE]
//           [--stream] [--logits-out FILE.safetensors]
//
// Prefills every prompt into the KV caches, then decodes one token per
// sequence per step until each has its tokens, met --eos or filled the
// context. Prints one continuation per prompt, in prompt order, and the
// speed lines. docs/generate.md describes it.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/PathOverlap.h"
#include "runtime/base/Printable.h"
#include "runtime/base/ReadFile.h"
#include "runtime/base/WriteFile.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/data/ContinuationText.h"
#include "runtime/data/Tokenizer.h"
#include "runtime/exec/Weights.h"
#include "runtime/generate/Generator.h"
#include "runtime/generate/Sampling.h"
#include "runtime/tools/Devices.h"
#include "runtime/tools/ProfileFlags.h"
#include "runtime/tools/Ranks.h"

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

ABSL_DECLARE_FLAG(std::string, weights);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::string, logits_out);

ABSL_FLAG(std::string, prompts, "",
          "generate: one prompt per line, token ids (or text with "
          "--tokenizer)");
ABSL_FLAG(int64_t, max_new_tokens, 0, "generate: tokens to add per prompt");
ABSL_FLAG(double, temperature, 0.0, "generate: 0 is greedy");
ABSL_FLAG(int64_t, top_k, 0, "generate: sample from the K likeliest (0: all)");
ABSL_FLAG(double, top_p, 1.0,
          "generate: sample from the likeliest tokens holding mass P");
ABSL_FLAG(int64_t, eos, -1, "generate: stop a sequence at this id (-1: none)");
ABSL_FLAG(std::string, tokenizer, "",
          "generate: SentencePiece model (or 'bytes') to read prompts as text "
          "and write continuations as text");
ABSL_FLAG(std::string, out, "", "generate: write the continuations here");
ABSL_FLAG(bool, stream, false,
          "generate: print tokens as they come (one prompt only)");

namespace {
using moert::Generator;

int fail(const absl::Status &status) {
  return moert::tools::failRun("moe-run generate", status, /*everyRank=*/true);
}

absl::Status invalid(const std::string &message) {
  return absl::InvalidArgumentError(message);
}

/// The prompts of `path`: one per non-empty line, ids or text.
absl::StatusOr<std::vector<std::vector<int32_t>>>
readPrompts(const std::string &path, const moert::data::Tokenizer *tokenizer,
            const Generator &generator) {
  absl::StatusOr<std::string> text = moert::readFile(path, "the prompts");
  if (!text.ok())
    return text.status();
  std::vector<std::vector<int32_t>> prompts;
  int line = 0;
  for (absl::string_view row : absl::StrSplit(*text, '\n')) {
    ++line;
    if (absl::StripAsciiWhitespace(row).empty())
      continue;
    std::string where = absl::StrCat(path, ":", line, ": ");
    std::vector<int32_t> ids;
    if (tokenizer) {
      absl::StatusOr<std::vector<int32_t>> encoded = tokenizer->encode(
          std::string_view(row.data(), row.size()));
      if (!encoded.ok())
        return invalid(where + std::string(encoded.status().message()));
      ids = std::move(*encoded);
    } else {
      for (absl::string_view word :
           absl::StrSplit(row, absl::ByAnyChar(" \t\r"), absl::SkipEmpty())) {
        int64_t id;
        if (!absl::SimpleAtoi(word, &id))
          return invalid(absl::StrCat(where, "'", word.substr(0, 32),
                                      "' is not a token id"));
        if (id < 0 || id >= generator.vocab())
          return invalid(absl::StrCat(where, "token id ", id,
                                      " is outside the vocabulary [0, ",
                                      generator.vocab(), ")"));
        ids.push_back(int32_t(id));
      }
    }
    if (ids.empty())
      return invalid(where + "the prompt has no tokens");
    if (int64_t(ids.size()) > generator.capacity())
      return invalid(absl::StrCat(where, "the prompt has ", ids.size(),
                                  " tokens, more than the context capacity ",
                                  generator.capacity()));
    if (int64_t(prompts.size()) == generator.batch())
      return invalid(absl::StrCat(where, "more prompts than the batch of ",
                                  generator.batch(),
                                  " the model was compiled for"));
    prompts.push_back(std::move(ids));
  }
  if (prompts.empty())
    return invalid(path + ": no prompts");
  return prompts;
}

absl::StatusOr<moert::SamplingOptions> samplingFromFlags() {
  moert::SamplingOptions options;
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.topK = absl::GetFlag(FLAGS_top_k);
  options.topP = absl::GetFlag(FLAGS_top_p);
  options.seed = absl::GetFlag(FLAGS_seed);
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature))
    return invalid(absl::StrCat("--temperature must be a finite number >= 0, "
                                "got ", options.temperature));
  if (options.topK < 0)
    return invalid(absl::StrCat("--top-k must be >= 0, got ", options.topK));
  if (!(options.topP > 0 && options.topP <= 1))
    return invalid(absl::StrCat("--top-p must be in (0, 1], got ", options.topP));
  return options;
}

/// A continuation as one line: ids, or the text it adds to its prompt
/// (ContinuationText.h) with newlines, other control characters and bytes
/// that are not UTF-8 written as \xNN.
absl::StatusOr<std::string> render(const std::vector<int32_t> &prompt,
                                   const std::vector<int32_t> &ids,
                                   const moert::data::Tokenizer *tokenizer) {
  if (!tokenizer)
    return absl::StrJoin(ids, " ");
  moert::data::ContinuationText continuation(*tokenizer, prompt);
  for (int32_t id : ids)
    if (absl::StatusOr<std::string> piece = continuation.append(id); !piece.ok())
      return piece.status();
  absl::StatusOr<std::string> text = continuation.text();
  if (!text.ok())
    return text.status();
  return moert::printable(*text, std::string::npos);
}

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle]
                           : (values[middle - 1] + values[middle]) / 2;
}

struct Timing {
  double prefillMs = 0;
  std::vector<double> stepMs;
  int64_t decodedTokens = 0;
};

/// Prefills, then decodes until every sequence is done; `onToken` sees each
/// new token of each sequence, and the logits it was drawn from, as it
/// comes.
template <typename OnToken>
absl::Status generate(Generator &generator,
                      const std::vector<std::vector<int32_t>> &prompts,
                      const moert::SamplingOptions &sampling, int64_t maxNew,
                      int64_t eos, std::vector<std::vector<int32_t>> &generated,
                      Timing &timing, moert::profile::Profiler *profiler,
                      OnToken onToken) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start)
        .count();
  };
  // Step 1 is the prefill, step n + 1 decode step n.
  auto beginStep = [&](int64_t step) {
    if (profiler)
      profiler->beginStep(step);
  };
  std::vector<float> logits;
  auto start = Clock::now();
  beginStep(1);
  {
    moert::profile::Profiler::Scope scope(profiler, "prefill", "step");
    if (auto status = generator.prefill(prompts, logits); !status.ok())
      return status;
  }
  timing.prefillMs = since(start);

  int64_t batch = generator.batch(), vocab = generator.vocab();
  std::vector<int64_t> length(batch, 0);
  std::vector<bool> active(batch, false);
  for (size_t b = 0; b < prompts.size(); ++b) {
    length[b] = prompts[b].size();
    // Prompt and continuation together fill at most the context.
    active[b] = maxNew > 0 && length[b] < generator.capacity();
  }
  generated.assign(prompts.size(), {});
  std::vector<int32_t> tokens(batch, 0), positions(batch, -1);
  for (int64_t step = 0;; ++step) {
    bool any = false;
    for (size_t b = 0; b < prompts.size(); ++b) {
      positions[b] = -1;
      if (!active[b])
        continue;
      int32_t token = moert::sampleToken(logits.data() + b * vocab, vocab,
                                         sampling, int64_t(b), step);
      if (token == eos) {
        active[b] = false;
        continue;
      }
      generated[b].push_back(token);
      onToken(b, token, logits.data() + b * vocab);
      ++length[b];
      // The token is decoded only when another one is wanted after it.
      if (int64_t(generated[b].size()) == maxNew ||
          length[b] >= generator.capacity()) {
        active[b] = false;
        continue;
      }
      tokens[b] = token;
      positions[b] = int32_t(length[b] - 1);
      any = true;
      ++timing.decodedTokens;
    }
    if (!any)
      return absl::OkStatus();
    start = Clock::now();
    beginStep(step + 2);
    moert::profile::Profiler::Scope scope(
        profiler, absl::StrCat("decode ", step + 1), "step");
    if (auto status = generator.decode(tokens, positions, logits);
        !status.ok())
      return status;
    timing.stepMs.push_back(since(start));
  }
}
} // namespace

int runGenerate(const std::string &modelPath) {
  std::string promptsPath = absl::GetFlag(FLAGS_prompts);
  std::string outPath = absl::GetFlag(FLAGS_out);
  std::string weightsDir = absl::GetFlag(FLAGS_weights);
  int64_t maxNew = absl::GetFlag(FLAGS_max_new_tokens);
  if (promptsPath.empty())
    return fail(invalid("--prompts FILE is required"));
  if (maxNew < 1)
    return fail(invalid(absl::StrCat("--max-new-tokens must be >= 1, got ",
                                     maxNew)));
  absl::StatusOr<moert::SamplingOptions> sampling = samplingFromFlags();
  if (!sampling.ok())
    return fail(sampling.status());
  std::vector<std::string> inputs =
      moert::withFilesInside({modelPath, weightsDir, promptsPath});
  for (const std::string &output : {outPath, absl::GetFlag(FLAGS_logits_out)})
    if (!output.empty()) {
      if (std::string input = moert::inputOverwrittenBy(output, inputs);
          !input.empty())
        return fail(invalid(moert::overwritesInputMessage(output, input)));
      if (auto status = moert::checkWritableFile(output); !status.ok())
        return fail(status);
    }

  absl::StatusOr<moert::Artifact> artifact = moert::Artifact::load(modelPath);
  if (!artifact.ok())
    return fail(artifact.status());
  // Generation is one process (moec refuses to split its programs).
  if (absl::StatusOr<moert::comm::Parallelism *> ranks =
          moert::tools::planRanks(*artifact);
      !ranks.ok())
    return fail(ranks.status());
  const moert::fb::Model &model = artifact->model();
  absl::StatusOr<moert::Weights> weights =
      weightsDir.empty()
          ? moert::Weights::initialise(model, absl::GetFlag(FLAGS_seed))
          : moert::Weights::fromCheckpoint(model, weightsDir);
  if (!weights.ok())
    return fail(weights.status());
  absl::StatusOr<std::unique_ptr<moert::Backend>> chosen =
      moert::tools::backendFromFlags(nullptr);
  if (!chosen.ok())
    return fail(chosen.status());
  std::unique_ptr<moert::Backend> backend = std::move(*chosen);
  absl::StatusOr<std::unique_ptr<Generator>> generator =
      Generator::create(*artifact, *weights, *backend);
  if (!generator.ok())
    return fail(generator.status());

  std::unique_ptr<moert::data::Tokenizer> tokenizer;
  if (std::string spec = absl::GetFlag(FLAGS_tokenizer); !spec.empty()) {
    absl::StatusOr<std::unique_ptr<moert::data::Tokenizer>> opened =
        moert::data::openTokenizer(spec);
    if (!opened.ok())
      return fail(opened.status());
    tokenizer = std::move(*opened);
    if (tokenizer->vocabSize() != (*generator)->vocab())
      return fail(invalid(absl::StrCat(
          "--tokenizer ", spec, " has a vocabulary of ",
          tokenizer->vocabSize(), " but the model's is ",
          (*generator)->vocab())));
  }
  int64_t eos = absl::GetFlag(FLAGS_eos);
  if (eos < -1 || eos >= (*generator)->vocab())
    return fail(invalid(absl::StrCat("--eos ", eos,
                                     " is outside the vocabulary [0, ",
                                     (*generator)->vocab(), ")")));
  absl::StatusOr<std::vector<std::vector<int32_t>>> prompts =
      readPrompts(promptsPath, tokenizer.get(), **generator);
  if (!prompts.ok())
    return fail(prompts.status());
  bool stream = absl::GetFlag(FLAGS_stream);
  if (stream && prompts->size() != 1)
    return fail(invalid(absl::StrCat("--stream prints one prompt's tokens; ",
                                     promptsPath, " holds ", prompts->size())));

  std::string logitsPath = absl::GetFlag(FLAGS_logits_out);
  int64_t vocab = (*generator)->vocab();
  // [prompts, max new tokens, vocab]: each token's distribution, before
  // temperature; zero past a sequence's end.
  std::vector<float> stepLogits(
      logitsPath.empty() ? 0 : prompts->size() * maxNew * vocab, 0.0f);

  absl::StatusOr<moert::ProfileRun> profiling = moert::profileFromFlags();
  if (!profiling.ok())
    return fail(profiling.status());
  (*generator)->setProfiler(profiling->profiler.get());

  std::optional<moert::data::ContinuationText> streamed;
  if (stream && tokenizer)
    streamed.emplace(*tokenizer, prompts->front());
  std::vector<std::vector<int32_t>> generated;
  Timing timing;
  absl::Status status = generate(
      **generator, *prompts, *sampling, maxNew, eos, generated, timing,
      profiling->profiler.get(), [&](size_t b, int32_t token, const float *logits) {
        if (!logitsPath.empty())
          std::copy_n(logits, vocab,
                      stepLogits.begin() +
                          (b * maxNew + generated[b].size() - 1) * vocab);
        if (!stream)
          return;
        if (!tokenizer) {
          std::cout << " " << token << std::flush;
          return;
        }
        absl::StatusOr<std::string> piece = streamed->append(token);
        std::cout << moert::printable(piece.ok() ? *piece : "?",
                                      std::string::npos)
                  << std::flush;
      });
  if (!status.ok())
    return fail(status);

  std::string lines;
  for (size_t b = 0; b < generated.size(); ++b) {
    absl::StatusOr<std::string> line =
        render((*prompts)[b], generated[b], tokenizer.get());
    if (!line.ok())
      return fail(line.status());
    absl::StrAppend(&lines, *line, "\n");
  }
  if (stream) {
    absl::StatusOr<std::string> rest =
        streamed ? streamed->rest() : std::string();
    std::cout << moert::printable(rest.ok() ? *rest : "?", std::string::npos)
              << "\n";
  }
  else if (outPath.empty())
    std::cout << lines;
  else if (auto written = moert::writeFileAtomically(outPath, lines);
           !written.ok())
    return fail(written);
  else
    std::cout << "continuations: " << outPath << "\n";

  if (!logitsPath.empty()) {
    if (auto written = moert::writeSafetensors(
            logitsPath, {{"logits", moert::DType::kF32,
                          {int64_t(prompts->size()), maxNew, vocab},
                          stepLogits.data()}});
        !written.ok())
      return fail(written);
    std::cout << "logits: " << logitsPath << "\n";
  }
  double decodeMs = 0;
  for (double ms : timing.stepMs)
    decodeMs += ms;
  std::printf("prefill_ms: %.3f\n", timing.prefillMs);
  std::printf("decode_ms_per_token: %.3f\n", median(timing.stepMs));
  std::printf("decode_tokens_per_s: %.2f\n",
              decodeMs > 0 ? timing.decodedTokens * 1000.0 / decodeMs : 0.0);
  if (auto finished = moert::finishProfile(*profiling); !finished.ok())
    return fail(finished);
  return 0;
}
