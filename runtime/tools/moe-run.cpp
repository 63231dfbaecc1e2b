//===- moe-run.cpp - run a compiled model -----------------------------------===//
//
//   moe-run MODEL.moex [--weights DIR | --init-from DENSE_DIR | --seed N] --tokens FILE
//           [--logits-out OUT.safetensors] [--repeat N] [--save-weights DIR]
//   moe-run MODEL.moex --list-kernels
//   moe-run train MODEL.moex ... (TrainCommand.cpp)
//   moe-run generate MODEL.moex ... (GenerateCommand.cpp)
//   moe-run calibrate | profile-plot ... (CalibrateCommand.cpp,
//           ProfilePlotCommand.cpp); --trace and --profile: ProfileFlags.cpp
//
// Loads and verifies the artifact, binds weights from a Hugging Face
// checkpoint directory (or draws them from the artifact's initialisers),
// runs the forward pass on the CPU and prints the next token of each
// sequence. Every error is one line on stderr and exit status 1.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/Printable.h"
#include "runtime/base/PathOverlap.h"
#include "runtime/base/WriteFile.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/checkpoint/WeightShards.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/Initialize.h"
#include "runtime/exec/TokenFile.h"
#include "runtime/exec/Weights.h"

#include "runtime/comm/Gather.h"
#include "runtime/tools/DashedFlags.h"
#include "runtime/tools/Devices.h"
#include "runtime/tools/ProfileFlags.h"
#include "runtime/tools/Ranks.h"

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"

#include <csignal>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

ABSL_FLAG(std::string, weights, "",
          "Hugging Face checkpoint directory (config.json + model.safetensors "
          "or shards); without it weights are drawn from the initialisers");
ABSL_FLAG(std::string, init_from, "",
          "dense Hugging Face checkpoint to derive an upcycled model's "
          "weights from: runs the artifact's initialisation program");
ABSL_FLAG(uint64_t, seed, 0, "seed of the initialisers when --weights is absent");
ABSL_FLAG(std::string, tokens, "",
          "token ids: one sequence per line, whitespace separated");
ABSL_FLAG(std::string, logits_out, "",
          "write fp32 logits [batch, seq, vocab] as tensor 'logits'");
ABSL_FLAG(int, repeat, 1, "run the forward pass N times; prints the median");
ABSL_FLAG(bool, list_kernels, false,
          "print the artifact's schedule: each kernel, the op and source "
          "location it came from, and its operand shapes; then exit");
ABSL_FLAG(std::string, save_weights, "",
          "write the bound weights as a Hugging Face checkpoint directory");
ABSL_FLAG(std::string, max_shard_size, "5GB",
          "largest weights file of a checkpoint written (--save-weights, "
          "train --save), as transformers' max_shard_size: 5GB, 500MB, 2GiB "
          "or bytes; 0: one file");

ABSL_DECLARE_FLAG(bool, profile); // ProfileFlags.cpp

// TrainCommand.cpp
int runTrain(const std::string &modelPath);

absl::StatusOr<uint64_t> maxShardBytesFlag() {
  absl::StatusOr<uint64_t> bytes =
      moert::parseShardSize(absl::GetFlag(FLAGS_max_shard_size));
  if (!bytes.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--max-shard-size: ", bytes.status().message()));
  return bytes;
}
int runPlot(const std::vector<std::string> &arguments);
int runProfilePlot(const std::vector<std::string> &arguments); // ProfilePlotCommand.cpp
int runCalibrate(); // CalibrateCommand.cpp
int runGenerate(const std::string &modelPath); // GenerateCommand.cpp

namespace {
int fail(const absl::Status &status) {
  return moert::tools::failRun("moe-run", status);
}
/// An error every rank meets alike (flags, the artifact): reported once.
int failEverywhere(const absl::Status &status) {
  return moert::tools::failRun("moe-run", status, /*everyRank=*/true);
}

/// This rank's block of a batch of `ranks` blocks.
moert::TokenBatch rankBlock(const moert::TokenBatch &all, int rank, int ranks) {
  size_t each = all.sequences.size() / ranks;
  moert::TokenBatch mine;
  mine.sequences.assign(all.sequences.begin() + rank * each,
                        all.sequences.begin() + (rank + 1) * each);
  return mine;
}

/// Zeroes the logits of padding positions past each sequence's end and
/// writes [batch, longest sequence, vocab].
absl::Status writeLogits(const std::string &path, const moert::TokenBatch &batch,
                         const std::vector<float> &logits, int64_t seq,
                         int64_t vocab) {
  int64_t longest = 0;
  for (const auto &sequence : batch.sequences)
    longest = std::max<int64_t>(longest, sequence.size());
  std::vector<float> out(batch.sequences.size() * longest * vocab, 0.0f);
  for (size_t b = 0; b < batch.sequences.size(); ++b)
    std::copy_n(logits.begin() + b * seq * vocab,
                batch.sequences[b].size() * vocab,
                out.begin() + b * longest * vocab);
  return moert::writeSafetensors(
      path, {{"logits", moert::DType::kF32,
              {int64_t(batch.sequences.size()), longest, vocab}, out.data()}});
}
void listKernels(const moert::fb::Model &model) {
  std::cout << "batch " << model.batch() << ", seq " << model.seq() << ", "
            << model.params()->size() << " parameters, activation arena "
            << model.arena_bytes() << " bytes\n";
  auto shapes = [&](const flatbuffers::Vector<int32_t> &ids) {
    std::string text;
    for (int32_t id : ids) {
      const moert::fb::Value &value = *model.values()->Get(id);
      text += text.empty() ? "[" : " [";
      for (size_t i = 0; i < value.shape()->size(); ++i)
        text += (i ? "x" : "") + std::to_string(value.shape()->Get(i));
      // Activations are fp32 unless stored as bf16 (Bf16Activations.h).
      bool bf16 = value.kind() == moert::fb::ValueKind::Arena &&
                  value.dtype() == moert::fb::DType::BF16;
      text += bf16 ? " bf16]" : "]";
    }
    return text;
  };
  auto list = [&](const moert::fb::Program &program) {
    int index = 0;
    for (const moert::fb::Kernel *kernel : *program.kernels())
      std::cout << "#" << index++ << " " << kernel->kernel()->str() << " <- "
                << kernel->location()->str() << " : "
                << shapes(*kernel->operands()) << " -> "
                << shapes(*kernel->results()) << "\n";
  };
  if (model.forward())
    list(*model.forward());
  if (model.training()) {
    std::cout << "training step:\n";
    list(*model.training()->program());
  }
  if (model.generation()) {
    std::cout << "prefill:\n";
    list(*model.generation()->prefill());
    std::cout << "decode_step:\n";
    list(*model.generation()->decode_step());
  }
}
} // namespace

int runTool(int argc, char **argv);

int main(int argc, char **argv) {
  // A write past the file-size limit fails with EFBIG, reported like any
  // other write error, instead of killing the tool.
  std::signal(SIGXFSZ, SIG_IGN);
  if (absl::Status joined = moert::tools::joinRun(); !joined.ok())
    return fail(joined);
  int code = runTool(argc, argv);
  if (code != 0 && moert::tools::world().size() > 1)
    moert::tools::world().abort(code); // no rank may finish without the rest
  moert::tools::leaveRun();
  return code;
}

int runTool(int argc, char **argv) {
  absl::SetProgramUsageMessage(
      "moe-run MODEL.moex [--weights DIR | --init-from DENSE_DIR | --seed N] "
      "--tokens FILE "
      "[--logits-out OUT.safetensors] [--repeat N] [--save-weights DIR] "
      "[--max-shard-size 5GB]\n"
      "moe-run train MODEL.moex --tokens FILE --steps N --save OUT_DIR "
      "[--weights DIR | --init-from DENSE_DIR | --resume DIR] [--lr LR] "
      "[--min-lr LR] [--warmup-steps W] [--weight-decay WD] [--clip C] "
      "[--grad-accum M] [--eval-tokens FILES] (see docs/training.md)\n"
      "moe-run generate MODEL.moex (--weights DIR | --seed N) --prompts FILE "
      "--max-new-tokens N [--temperature T] [--top-k K] [--top-p P] "
      "[--eos ID] [--tokenizer T.model] [--out FILE] [--stream] "
      "(see docs/generate.md)\n"
      "mpirun -np N moe-run [train] MODEL.moex ... for an artifact compiled "
      "with --ranks N [--exchange-chunks C] (see docs/parallel.md)\n"
      "moe-run plot OUT.svg LABEL=RUN_DIR/metrics.jsonl ...\n"
      "moe-run calibrate [--force] [--ceilings FILE]\n"
      "moe-run devices (the backends built in and the devices visible; "
      "run, train and generate take --device cpu|cuda|cuda:N)\n"
      "moe-run profile-plot PROFILE.json -o FILE.svg\n"
      "profiling (inference and train): [--trace FILE.json] "
      "[--trace-steps A:B] [--profile] [--profile-json FILE] [--ceilings FILE] "
      "(see docs/profiling.md)");
  std::vector<std::string> positional = moert::parseDashedFlags(argc, argv);
  if (positional.size() >= 2 && positional[1] == "train") {
    if (positional.size() != 3)
      return fail(absl::InvalidArgumentError(
          "train: expected one artifact (MODEL.moex); see --help"));
    return runTrain(positional[2]);
  }
  if (positional.size() >= 2 && positional[1] == "generate") {
    if (positional.size() != 3)
      return fail(absl::InvalidArgumentError(
          "generate: expected one artifact (MODEL.moex); see --help"));
    return runGenerate(positional[2]);
  }
  if (positional.size() == 2 && positional[1] == "calibrate")
    return runCalibrate();
  if (positional.size() == 2 && positional[1] == "devices") {
    moert::tools::listDevices(std::cout);
    return 0;
  }
  if (positional.size() >= 2 && positional[1] == "profile-plot")
    return runProfilePlot(std::vector<std::string>(positional.begin() + 2,
                                                   positional.end()));
  if (positional.size() >= 2 && positional[1] == "plot")
    return runPlot(std::vector<std::string>(positional.begin() + 2,
                                            positional.end()));
  if (positional.size() != 2)
    return fail(absl::InvalidArgumentError(
        "expected one artifact (MODEL.moex); see --help"));

  absl::StatusOr<moert::Artifact> artifact = moert::Artifact::load(positional[1]);
  if (!artifact.ok())
    return failEverywhere(artifact.status());
  const moert::fb::Model &model = artifact->model();
  if (absl::GetFlag(FLAGS_list_kernels)) {
    if (moert::tools::isRankZero())
      listKernels(model);
    return 0;
  }
  absl::StatusOr<moert::comm::Parallelism *> parallel =
      moert::tools::planRanks(*artifact);
  if (!parallel.ok())
    return failEverywhere(parallel.status());
  moert::comm::Communicator &world = moert::tools::world();
  const int rank = world.rank(), ranks = world.size();
  const bool rankZero = rank == 0;

  absl::StatusOr<std::unique_ptr<moert::Backend>> chosen =
      moert::tools::backendFromFlags(*parallel);
  if (!chosen.ok())
    return failEverywhere(chosen.status());
  std::unique_ptr<moert::Backend> backend = std::move(*chosen);
  std::string weightsDir = absl::GetFlag(FLAGS_weights);
  std::string denseDir = absl::GetFlag(FLAGS_init_from);
  std::string saveDir = absl::GetFlag(FLAGS_save_weights);
  std::string tokensPath = absl::GetFlag(FLAGS_tokens);
  absl::StatusOr<uint64_t> maxShardBytes = maxShardBytesFlag();
  if (!maxShardBytes.ok())
    return failEverywhere(maxShardBytes.status());
  if (!weightsDir.empty() && !denseDir.empty())
    return failEverywhere(absl::InvalidArgumentError(
        "--weights and --init-from exclude each other"));
  std::vector<std::string> inputs = moert::withFilesInside(
      {positional[1], weightsDir, denseDir, tokensPath});
  for (const std::string &output : {saveDir, absl::GetFlag(FLAGS_logits_out)})
    if (std::string input = moert::inputOverwrittenBy(output, inputs);
        !input.empty())
      return failEverywhere(absl::InvalidArgumentError(
          moert::overwritesInputMessage(output, input)));
  // Refused before the run, not after it.
  if (std::string out = absl::GetFlag(FLAGS_logits_out);
      !out.empty() && rankZero)
    if (absl::Status status = moert::checkWritableFile(out); !status.ok())
      return fail(status);
  // Only converting, on one process: stream the upcycled checkpoint tensor
  // by tensor. (Ranks derive their experts and gather them to rank 0.)
  if (!denseDir.empty() && !saveDir.empty() && tokensPath.empty() &&
      ranks == 1) {
    if (auto status = moert::writeUpcycledCheckpoint(
            *artifact, denseDir, saveDir, *backend, *maxShardBytes);
        !status.ok())
      return fail(status);
    std::cout << "weights saved: " << saveDir << "\n";
    return 0;
  }
  moert::ExpertShare share = moert::ExpertShare::ofRank(model, rank);
  absl::StatusOr<moert::Weights> weights =
      !denseDir.empty()
          ? moert::Weights::forInitialization(model, denseDir)
      : weightsDir.empty()
          ? moert::Weights::initialise(model, absl::GetFlag(FLAGS_seed), share)
          : moert::Weights::fromCheckpoint(model, weightsDir, share);
  if (!weights.ok())
    return fail(weights.status());
  if (!denseDir.empty())
    if (auto status =
            moert::runInitialization(*artifact, *weights, *backend, share);
        !status.ok())
      return fail(status);
  if (!saveDir.empty()) {
    if (auto status =
            weights->save(model, saveDir, *maxShardBytes, *parallel);
        !status.ok())
      return fail(status);
    if (rankZero)
      std::cout << "weights saved: " << saveDir << "\n";
  }

  if (tokensPath.empty()) {
    if (!saveDir.empty())
      return 0; // only asked to write weights
    return failEverywhere(
        absl::InvalidArgumentError("--tokens FILE is required"));
  }

  absl::StatusOr<std::unique_ptr<moert::Executor>> executor =
      moert::Executor::create(*artifact, *weights, *backend);
  if (!executor.ok())
    return fail(executor.status());
  moert::Executor &run = **executor;

  // Several ranks: the file holds every rank's batch, rank r's the r-th
  // block, and rank 0 reports the whole.
  absl::StatusOr<moert::TokenBatch> batch = moert::readTokenFile(
      tokensPath, run.batch() * ranks, run.seq(), run.vocab());
  if (!batch.ok())
    return failEverywhere(batch.status());
  std::vector<int32_t> ids = rankBlock(*batch, rank, ranks).padded(run.seq());

  int repeat = absl::GetFlag(FLAGS_repeat);
  if (repeat < 1)
    return failEverywhere(absl::InvalidArgumentError("--repeat must be >= 1"));
  absl::StatusOr<moert::ProfileRun> profiling = moert::profileFromFlags();
  if (!profiling.ok())
    return failEverywhere(profiling.status());
  moert::profile::Profiler *profiler = profiling->profiler.get();
  run.setProfiler(profiler);
  std::vector<float> logits;
  std::vector<double> millis;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (profiler)
      profiler->beginStep(r + 1);
    moert::profile::Profiler::Scope step(
        profiler, absl::StrCat("forward ", r + 1), "step");
    if (auto status = run.forward(ids, logits); !status.ok())
      return fail(status);
    millis.push_back(std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start)
                         .count());
  }

  int64_t vocab = run.vocab();
  if (absl::GetFlag(FLAGS_profile))
    if (auto status = moert::tools::reportExchange(repeat, std::cout);
        !status.ok())
      return fail(status);
  if (ranks > 1) {
    absl::StatusOr<std::vector<uint8_t>> all = moert::comm::gatherOnFirst(
        world, logits.data(), int64_t(logits.size() * sizeof(float)));
    if (!all.ok())
      return fail(all.status());
    if (!rankZero) { // its trace, if asked for; rank 0 reports the rest
      if (auto status = moert::finishProfile(*profiling); !status.ok())
        return fail(status);
      return 0;
    }
    logits.resize(all->size() / sizeof(float));
    std::memcpy(logits.data(), all->data(), all->size());
  }
  for (size_t b = 0; b < batch->sequences.size(); ++b) {
    const float *last =
        logits.data() + (b * run.seq() + batch->sequences[b].size() - 1) * vocab;
    int64_t next = std::max_element(last, last + vocab) - last;
    std::cout << "sequence " << b << ": next token " << next << "\n";
  }
  if (repeat > 1) {
    std::sort(millis.begin(), millis.end());
    size_t middle = millis.size() / 2;
    double median = millis.size() % 2
                        ? millis[middle]
                        : (millis[middle - 1] + millis[middle]) / 2;
    std::printf("forward_ms_median: %.3f\n", median);
  }
  if (auto status = moert::finishProfile(*profiling); !status.ok())
    return fail(status);
  if (std::string out = absl::GetFlag(FLAGS_logits_out); !out.empty()) {
    if (auto status = writeLogits(out, *batch, logits, run.seq(), vocab);
        !status.ok())
      return fail(status);
    std::cout << "logits: " << out << "\n";
  }
  return 0;
}
