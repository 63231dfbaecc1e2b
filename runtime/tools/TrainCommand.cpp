//===- TrainCommand.cpp - moe-run train -----------------------------------===//
//
//   moe-run train MODEL.moex --tokens FILE --steps N --save OUT_DIR
//       [--weights DIR | --init-from DENSE_DIR | --seed N] [--resume DIR]
//       [--lr LR] [--min-lr LR] [--warmup-steps W] [--weight-decay WD]
//       [--clip C] [--grad-accum M] [--data-seed S]
//       [--eval-tokens FILE[,FILE...]] [--eval-every K] [--eval-batches K]
//       [--save-every K] [--keep K] [--skip-nonfinite] [--label NAME]
//
// Trains the artifact's training step (moec compile --mode train) and
// writes OUT_DIR: the HF checkpoint, the optimiser state to resume from,
// metrics.jsonl (one JSON object per step and per evaluation) and loss.svg;
// with --save-every, also OUT_DIR/checkpoint-STEP (the newest --keep).
// Ctrl-C saves, then exits. Every error is one line and exit status 1.
//
//===----------------------------------------------------------------------===//

#include "runtime/base/JsonDepth.h"
#include "runtime/base/PathOverlap.h"
#include "runtime/base/Printable.h"
#include "runtime/base/ReadFile.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/checkpoint/WeightShards.h"
#include "runtime/exec/Initialize.h"
#include "runtime/train/Checkpoints.h"
#include "runtime/train/LossPlot.h"
#include "runtime/train/TrainData.h"
#include "runtime/train/Trainer.h"
#include "runtime/tools/Devices.h"
#include "runtime/tools/ProfileFlags.h"
#include "runtime/tools/Ranks.h"

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

ABSL_DECLARE_FLAG(std::string, weights);
ABSL_DECLARE_FLAG(std::string, init_from);
ABSL_DECLARE_FLAG(std::string, tokens);
ABSL_DECLARE_FLAG(uint64_t, seed);
// moe-run.cpp: --max-shard-size in bytes, or the error naming the flag.
absl::StatusOr<uint64_t> maxShardBytesFlag();

ABSL_DECLARE_FLAG(bool, profile); // ProfileFlags.cpp
ABSL_FLAG(int64_t, steps, 0, "train: optimiser steps in the whole run");
ABSL_FLAG(double, lr, 1e-3, "train: peak learning rate");
ABSL_FLAG(double, min_lr, 1e-4, "train: learning rate at the end of the cosine");
ABSL_FLAG(int64_t, warmup_steps, 0, "train: linear warm-up steps");
ABSL_FLAG(double, weight_decay, 0.1,
          "train: AdamW decoupled weight decay of every matrix");
ABSL_FLAG(double, clip, 1.0, "train: max global gradient norm (<= 0: off)");
ABSL_FLAG(int64_t, grad_accum, 1, "train: micro-batches per step");
ABSL_FLAG(uint64_t, data_seed, 0, "train: seed of the data order");
ABSL_FLAG(std::string, save, "", "train: output directory");
ABSL_FLAG(std::string, resume, "",
          "train: a directory an earlier (interrupted) run saved");
ABSL_FLAG(std::string, eval_tokens, "",
          "train: held-out token files, comma-separated, each evaluated");
ABSL_FLAG(int64_t, eval_every, 0, "train: evaluate every K steps (0: at the end)");
ABSL_FLAG(int64_t, eval_batches, 4, "train: batches per evaluation");
ABSL_FLAG(int64_t, save_every, 0,
          "train: also save OUT_DIR/checkpoint-STEP every K steps");
ABSL_FLAG(int64_t, keep, 0,
          "train: keep only the newest K periodic checkpoints (0: all)");
ABSL_FLAG(bool, skip_nonfinite, false,
          "train: skip a step whose loss or gradient norm is not finite "
          "(no update; counted in the metrics) instead of stopping");
ABSL_FLAG(int64_t, stop_after, 0,
          "train: save and stop after this step as an interruption would "
          "(for tests of --resume)");
ABSL_FLAG(std::string, label, "", "train: name of the run in loss.svg");
ABSL_FLAG(std::string, grads_out, "",
          "train: write the first step's losses and gradients (fp32, HF "
          "names prefixed 'grad.') to this safetensors file");

namespace {
using namespace moert;
using namespace moert::train;

volatile std::sig_atomic_t interrupted = 0;
void onInterrupt(int) { interrupted = 1; }

absl::Status checkFlags() {
  if (absl::GetFlag(FLAGS_steps) < 1)
    return absl::InvalidArgumentError("--steps must be >= 1");
  if (absl::GetFlag(FLAGS_save).empty())
    return absl::InvalidArgumentError("--save OUT_DIR is required");
  if (absl::GetFlag(FLAGS_tokens).empty())
    return absl::InvalidArgumentError("--tokens FILE is required");
  // NaN passes every comparison below as false, and would train to NaN.
  for (auto [name, value] :
       {std::pair{"--lr", absl::GetFlag(FLAGS_lr)},
        std::pair{"--min-lr", absl::GetFlag(FLAGS_min_lr)},
        std::pair{"--weight-decay", absl::GetFlag(FLAGS_weight_decay)},
        std::pair{"--clip", absl::GetFlag(FLAGS_clip)}})
    if (!std::isfinite(value))
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be a finite number, got ", value));
  if (absl::GetFlag(FLAGS_lr) <= 0 || absl::GetFlag(FLAGS_min_lr) < 0 ||
      absl::GetFlag(FLAGS_min_lr) > absl::GetFlag(FLAGS_lr))
    return absl::InvalidArgumentError("need 0 <= --min-lr <= --lr and --lr > 0");
  if (absl::GetFlag(FLAGS_warmup_steps) < 0 || absl::GetFlag(FLAGS_grad_accum) < 1 ||
      absl::GetFlag(FLAGS_weight_decay) < 0)
    return absl::InvalidArgumentError(
        "--warmup-steps and --weight-decay must be >= 0, --grad-accum >= 1");
  if (absl::GetFlag(FLAGS_save_every) < 0 || absl::GetFlag(FLAGS_keep) < 0)
    return absl::InvalidArgumentError("--save-every and --keep must be >= 0");
  int sources = !absl::GetFlag(FLAGS_weights).empty() +
                !absl::GetFlag(FLAGS_init_from).empty() +
                !absl::GetFlag(FLAGS_resume).empty();
  if (sources > 1)
    return absl::InvalidArgumentError(
        "--weights, --init-from and --resume exclude each other");
  // The output replaces a directory only when that loses nothing: never the
  // checkpoint training starts from (unless resuming it), never a directory
  // holding files moec did not write.
  std::error_code error;
  std::string save = absl::GetFlag(FLAGS_save);
  for (const std::string &input :
       {absl::GetFlag(FLAGS_weights), absl::GetFlag(FLAGS_init_from)})
    if (!input.empty() && std::filesystem::equivalent(input, save, error))
      return absl::InvalidArgumentError(absl::StrCat(
          "--save ", save, " is the checkpoint training starts from; "
          "choose another output directory"));
  std::vector<std::string> inputs = {absl::GetFlag(FLAGS_tokens)};
  for (absl::string_view eval :
       absl::StrSplit(absl::GetFlag(FLAGS_eval_tokens), ',', absl::SkipEmpty()))
    inputs.emplace_back(eval);
  for (const std::string &dir :
       {absl::GetFlag(FLAGS_weights), absl::GetFlag(FLAGS_init_from)})
    for (const std::string &file : withFilesInside({dir}))
      inputs.push_back(file);
  if (std::string input = inputOverwrittenBy(save, inputs); !input.empty())
    return absl::InvalidArgumentError(overwritesInputMessage(save, input));
  return checkReplaceable(save);
}

/// The weights training starts from (`resumeDir`: the checkpoint resumed).
absl::StatusOr<Weights> startingWeights(const Artifact &artifact,
                                        Backend &backend,
                                        const std::string &resumeDir) {
  const fb::Model &model = artifact.model();
  ExpertShare share = ExpertShare::ofRank(model, tools::world().rank());
  if (!resumeDir.empty())
    return Weights::fromCheckpoint(model, resumeDir, share);
  if (std::string dir = absl::GetFlag(FLAGS_weights); !dir.empty())
    return Weights::fromCheckpoint(model, dir, share);
  if (std::string dense = absl::GetFlag(FLAGS_init_from); !dense.empty()) {
    absl::StatusOr<Weights> weights = Weights::forInitialization(model, dense);
    if (!weights.ok())
      return weights.status();
    if (auto status = runInitialization(artifact, *weights, backend, share);
        !status.ok())
      return status;
    return weights;
  }
  return Weights::initialise(model, absl::GetFlag(FLAGS_seed), share);
}

/// Batches of `path` for this rank: its block of the global batch.
absl::StatusOr<std::unique_ptr<BatchSource>>
openRankSource(const std::string &path, const Trainer &trainer, uint64_t seed,
               bool shuffle) {
  int ranks = tools::world().size();
  absl::StatusOr<std::unique_ptr<BatchSource>> global =
      openBatchSource(path, trainer.batch() * ranks, trainer.seq(),
                      trainer.vocab(), seed, shuffle);
  if (!global.ok())
    return global.status();
  return rankBlocks(std::move(*global), tools::world().rank(), ranks);
}

/// Metrics of earlier steps, kept across resumes.
std::vector<nlohmann::json> readMetrics(const std::string &dir, int64_t upTo) {
  std::vector<nlohmann::json> records;
  absl::StatusOr<std::string> text = readFile(dir + "/metrics.jsonl");
  std::istringstream in(text.ok() ? *text : "");
  for (std::string line; std::getline(in, line);) {
    if (findJsonTooDeep(line) != std::string::npos)
      continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_discarded() && record.value("step", int64_t(0)) <= upTo)
      records.push_back(std::move(record));
  }
  return records;
}

std::string duration(double seconds) {
  int64_t s = int64_t(seconds + 0.5);
  return absl::StrCat(s / 3600, ":", absl::Dec(s / 60 % 60, absl::kZeroPad2),
                      ":", absl::Dec(s % 60, absl::kZeroPad2));
}

absl::Status writeGradients(const std::string &path, const Trainer &trainer,
                            const StepReport &report) {
  std::vector<TensorToWrite> tensors = trainer.gradientTensors("grad.");
  const Losses &l = report.losses;
  float losses[] = {float(l.ce), float(l.aux), float(l.z), float(l.total)};
  const char *names[] = {"loss.ce", "loss.aux", "loss.z", "loss.total"};
  for (int i = 0; i < 4; ++i)
    tensors.push_back({names[i], DType::kF32, {}, &losses[i]});
  return writeSafetensors(path, tensors);
}

class Run {
public:
  Run(Trainer &trainer, BatchSource &data) : trainer(trainer), data(data) {}

  /// Opens the held-out files once (each is then read from its start at
  /// every evaluation).
  absl::Status openEvaluation() {
    std::vector<std::string> paths = absl::StrSplit(
        absl::GetFlag(FLAGS_eval_tokens), ',', absl::SkipEmpty());
    for (const std::string &path : paths) {
      absl::StatusOr<std::unique_ptr<BatchSource>> source =
          openRankSource(path, trainer, 0, /*shuffle=*/false);
      if (!source.ok())
        return source.status();
      nlohmann::json start = (*source)->state();
      heldOut.push_back({path, std::move(*source), std::move(start)});
    }
    return absl::OkStatus();
  }

  absl::Status evaluate(int64_t step) {
    nlohmann::json record = {{"step", step}};
    for (HeldOut &held : heldOut) {
      if (absl::Status status = held.source->restore(held.start); !status.ok())
        return status;
      double sum = 0;
      int64_t batches = std::max<int64_t>(1, absl::GetFlag(FLAGS_eval_batches));
      for (int64_t b = 0; b < batches; ++b) {
        absl::StatusOr<Losses> losses = trainer.evaluate(held.source->next());
        if (!losses.ok())
          return losses.status();
        sum += losses->ce;
      }
      const std::string &path = held.path;
      std::string name = path.substr(path.rfind('/') + 1);
      record["eval_ce"][name] = sum / batches;
      if (tools::isRankZero())
        std::cerr << "\neval " << name << " at step " << step << ": ce "
                  << sum / batches << "\n";
    }
    if (record.contains("eval_ce"))
      metrics.push_back(record);
    return absl::OkStatus();
  }

  absl::Status save(const std::string &dir) {
    LossCurve curve{absl::GetFlag(FLAGS_label).empty() ? "train loss"
                                                       : absl::GetFlag(FLAGS_label),
                    {}};
    std::string jsonl;
    for (const nlohmann::json &record : metrics) {
      jsonl += record.dump() + "\n";
      // A skipped step's loss is NaN, which JSON writes as null (and a
      // resumed run reads back so): no point of the curve.
      if (record.contains("loss") && record["loss"].is_number() &&
          std::isfinite(record["loss"].get<double>()) &&
          record["step"].is_number())
        curve.points.push_back({record["step"].get<double>(),
                                record["loss"].get<double>()});
    }
    // The data order is the run's only randomness: its seed and position.
    nlohmann::json state = {{"data", data.state()},
                            {"data_seed", absl::GetFlag(FLAGS_data_seed)},
                            {"tokens_seen", tokensSeen},
                            {"skipped_steps", skippedSteps}};
    return trainer.save(dir, state,
                        {{"metrics.jsonl", jsonl},
                         {"loss.svg", lossPlotSvg({curve}, "training loss")}},
                        maxShardBytes);
  }

  void progress(const StepReport &report, int64_t steps, double seconds,
                int64_t tokensThisRun) {
    if (!tools::isRankZero())
      return;
    int64_t step = trainer.stepsDone();
    double rate = tokensThisRun / std::max(seconds, 1e-9);
    double eta = seconds / std::max<int64_t>(1, step - firstStep) * (steps - step);
    int filled = int(30 * step / steps);
    std::string line = absl::StrFormat(
        "step %d/%d [%s%s] loss %.4f (ce %.4f aux %.4f) %.0f tok/s ETA %s",
        step, steps, std::string(filled, '#'), std::string(30 - filled, '.'),
        report.losses.total, report.losses.ce, report.losses.aux, rate,
        duration(eta));
    static const bool tty = isatty(STDERR_FILENO);
    int64_t every = std::max<int64_t>(1, steps / 20);
    if (tty)
      std::cerr << "\r" << line << std::flush;
    else if (step % every == 0 || step == steps || step == firstStep + 1)
      std::cerr << line << "\n";
  }

  Trainer &trainer;
  BatchSource &data;
  uint64_t maxShardBytes = kDefaultMaxShardBytes;
  struct HeldOut {
    std::string path;
    std::unique_ptr<BatchSource> source;
    nlohmann::json start;
  };
  std::vector<HeldOut> heldOut;
  std::vector<nlohmann::json> metrics;
  int64_t tokensSeen = 0;
  int64_t skippedSteps = 0; // not finite, with --skip-nonfinite
  int64_t firstStep = 0;
};
} // namespace

int runTrain(const std::string &modelPath) {
  auto fail = [](const absl::Status &status) {
    // On a terminal, first end the progress line the error interrupts.
    if (isatty(STDERR_FILENO))
      std::cerr << "\n";
    return tools::failRun("moe-run train", status);
  };
  auto failEverywhere = [](const absl::Status &status) {
    return tools::failRun("moe-run train", status, /*everyRank=*/true);
  };
  if (auto status = checkFlags(); !status.ok())
    return failEverywhere(status);
  absl::StatusOr<uint64_t> maxShardBytes = maxShardBytesFlag();
  if (!maxShardBytes.ok())
    return failEverywhere(maxShardBytes.status());
  absl::StatusOr<Artifact> artifact = Artifact::load(modelPath);
  if (!artifact.ok())
    return failEverywhere(artifact.status());
  absl::StatusOr<comm::Parallelism *> parallel = tools::planRanks(*artifact);
  if (!parallel.ok())
    return failEverywhere(parallel.status());
  const bool rankZero = tools::isRankZero();
  if (*parallel && !absl::GetFlag(FLAGS_grads_out).empty())
    return failEverywhere(absl::UnimplementedError(
        "--grads-out writes one process's gradients; it is not supported on "
        "several ranks yet"));
  absl::StatusOr<std::unique_ptr<Backend>> chosen =
      tools::backendFromFlags(*parallel);
  if (!chosen.ok())
    return failEverywhere(chosen.status());
  std::unique_ptr<Backend> backend = std::move(*chosen);
  // --resume OUT_DIR continues from its newest complete checkpoint.
  std::string resumeDir = absl::GetFlag(FLAGS_resume);
  if (!resumeDir.empty())
    resumeDir = newestCheckpoint(resumeDir);
  absl::StatusOr<Weights> weights =
      startingWeights(*artifact, *backend, resumeDir);
  if (!weights.ok())
    return fail(weights.status());

  OptimizerOptions options;
  options.lr = absl::GetFlag(FLAGS_lr);
  options.minLr = absl::GetFlag(FLAGS_min_lr);
  options.warmupSteps = absl::GetFlag(FLAGS_warmup_steps);
  options.totalSteps = absl::GetFlag(FLAGS_steps);
  options.weightDecay = absl::GetFlag(FLAGS_weight_decay);
  options.clip = absl::GetFlag(FLAGS_clip);
  options.skipNonFinite = absl::GetFlag(FLAGS_skip_nonfinite);
  absl::StatusOr<std::unique_ptr<Trainer>> created =
      Trainer::create(*artifact, *weights, *backend, options, *parallel);
  if (!created.ok())
    return fail(created.status());
  Trainer &trainer = **created;
  // --grads-out reads the first step's gradients on the host.
  trainer.setKeepHostGradients(!absl::GetFlag(FLAGS_grads_out).empty());

  std::string tokens = absl::GetFlag(FLAGS_tokens);
  absl::StatusOr<std::unique_ptr<BatchSource>> data = openRankSource(
      tokens, trainer, absl::GetFlag(FLAGS_data_seed), /*shuffle=*/true);
  if (!data.ok())
    return fail(data.status());
  Run run(trainer, **data);
  run.maxShardBytes = *maxShardBytes;
  if (auto status = run.openEvaluation(); !status.ok())
    return fail(status);

  if (const std::string &dir = resumeDir; !dir.empty()) {
    absl::StatusOr<nlohmann::json> state = trainer.restore(dir);
    if (!state.ok())
      return fail(state.status());
    std::string statePath = dir + "/trainer_state.json";
    uint64_t seed = absl::GetFlag(FLAGS_data_seed);
    if (state->value("data_seed", seed) != seed)
      return fail(absl::InvalidArgumentError(absl::StrCat(
          statePath, ": field 'data_seed' is ",
          state->value("data_seed", seed), "; resume with --data-seed ",
          state->value("data_seed", seed), " to draw the same batches")));
    if (auto status = (*data)->restore(state->value("data", nlohmann::json()));
        !status.ok())
      return fail(absl::InvalidArgumentError(
          absl::StrCat(statePath, ": ", status.message())));
    if (trainer.stepsDone() >= absl::GetFlag(FLAGS_steps))
      return fail(absl::InvalidArgumentError(absl::StrCat(
          statePath, ": the run already reached step ", trainer.stepsDone(),
          " of --steps ", absl::GetFlag(FLAGS_steps),
          "; raise --steps to train further")));
    run.tokensSeen = state->value("tokens_seen", int64_t(0));
    run.skippedSteps = state->value("skipped_steps", int64_t(0));
    run.metrics = readMetrics(dir, trainer.stepsDone());
    if (rankZero)
      std::cerr << "resumed " << dir << " at step " << trainer.stepsDone()
                << "\n";
  }
  run.firstStep = trainer.stepsDone();
  absl::StatusOr<ProfileRun> profiling = profileFromFlags();
  if (!profiling.ok())
    return failEverywhere(profiling.status());
  profile::Profiler *profiler = profiling->profiler.get();
  trainer.setProfiler(profiler);

  std::signal(SIGINT, onInterrupt);
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  const int64_t accumulate = absl::GetFlag(FLAGS_grad_accum);
  const int64_t tokensPerStep =
      trainer.batch() * trainer.seq() * accumulate * tools::world().size();
  const std::string saveDir = absl::GetFlag(FLAGS_save);
  auto start = std::chrono::steady_clock::now();
  StepReport report;
  while (trainer.stepsDone() < steps) {
    auto stepStart = std::chrono::steady_clock::now();
    if (profiler)
      profiler->beginStep(trainer.stepsDone() + 1);
    absl::StatusOr<StepReport> stepped;
    {
      profile::Profiler::Scope phase(
          profiler, absl::StrCat("step ", trainer.stepsDone() + 1), "step");
      std::vector<Batch> micro;
      {
        profile::Profiler::Scope loading(profiler, "data loading", "phase");
        for (int64_t m = 0; m < accumulate; ++m)
          micro.push_back((*data)->next());
      }
      stepped = trainer.step(micro);
    }
    if (!stepped.ok())
      return fail(absl::Status(stepped.status().code(),
                               absl::StrCat(tokens, ": step ", trainer.stepsDone() + 1,
                                            ": ", stepped.status().message())));
    report = *stepped;
    double stepMillis = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - stepStart).count();
    run.tokensSeen += tokensPerStep;
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start).count();
    int64_t step = trainer.stepsDone();
    int64_t thisRun = (step - run.firstStep) * tokensPerStep;
    run.metrics.push_back({{"step", step},
                           {"loss", report.losses.total},
                           {"ce", report.losses.ce},
                           {"aux", report.losses.aux},
                           {"z", report.losses.z},
                           {"grad_norm", report.gradNorm},
                           {"lr", report.lr},
                           {"tokens", run.tokensSeen},
                           {"step_ms", stepMillis},
                           {"tokens_per_s", thisRun / std::max(seconds, 1e-9)}});
    if (!report.skipped.empty()) {
      ++run.skippedSteps;
      run.metrics.back()["skipped"] = report.skipped;
      run.metrics.back()["skipped_steps"] = run.skippedSteps;
      if (rankZero)
        std::cerr << "\nstep " << step << " skipped: "
                  << printable(report.skipped) << "\n";
    }
    run.progress(report, steps, seconds, thisRun);
    if (std::string out = absl::GetFlag(FLAGS_grads_out);
        !out.empty() && step == run.firstStep + 1)
      if (auto status = writeGradients(out, trainer, report); !status.ok())
        return fail(status);

    int64_t evalEvery = absl::GetFlag(FLAGS_eval_every);
    if ((evalEvery > 0 && step % evalEvery == 0) || step == steps) {
      profile::Profiler::Scope phase(profiler, "evaluation", "phase");
      if (auto status = run.evaluate(step); !status.ok())
        return fail(status);
    }
    bool stop = interrupted || step == absl::GetFlag(FLAGS_stop_after);
    auto save = [&](const std::string &dir) {
      profile::Profiler::Scope phase(profiler, "checkpoint save", "phase");
      return run.save(dir);
    };
    if (int64_t every = absl::GetFlag(FLAGS_save_every);
        every > 0 && step % every == 0) {
      if (auto status = save(periodicCheckpointDir(saveDir, step)); !status.ok())
        return fail(status);
      if (int64_t keep = absl::GetFlag(FLAGS_keep); keep > 0 && rankZero)
        if (auto status = pruneCheckpoints(saveDir, keep); !status.ok())
          return fail(status);
    }
    if (stop || step == steps)
      if (auto status = save(saveDir); !status.ok())
        return fail(status);
    if (stop) {
      if (rankZero)
        std::cerr << "\nstopped after step " << step << "; saved " << saveDir
                  << "; continue with --resume " << saveDir << "\n";
      return interrupted ? 130 : 0;
    }
  }
  if (absl::GetFlag(FLAGS_profile))
    if (auto status = tools::reportExchange(
            trainer.stepsDone() - run.firstStep, std::cout);
        !status.ok())
      return fail(status);
  if (!rankZero) { // its trace, if asked for; rank 0 reports the rest
    absl::Status traced = finishProfile(*profiling);
    return traced.ok() ? 0 : fail(traced);
  }
  std::cerr << "\n";
  if (auto status = finishProfile(*profiling); !status.ok())
    return fail(status);
  if (run.skippedSteps > 0)
    std::printf("skipped_steps: %lld\n", static_cast<long long>(run.skippedSteps));
  std::printf("final: step %lld loss %.6f ce %.6f aux %.6f\nsaved: %s\n",
              static_cast<long long>(trainer.stepsDone()), report.losses.total,
              report.losses.ce, report.losses.aux, saveDir.c_str());
  return 0;
}
