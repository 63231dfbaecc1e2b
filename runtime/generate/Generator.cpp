//===- Generator.cpp - run the prefill and decode programs ----------------===//

#include "runtime/generate/Generator.h"

#include "runtime/exec/Binding.h"
#include "runtime/exec/RunLaunch.h"

#include "absl/strings/str_cat.h"

#include <algorithm>

namespace moert {

absl::StatusOr<std::unique_ptr<Generator>>
Generator::create(const Artifact &artifact, const Weights &weights,
                  Backend &backend) {
  const fb::Model &model = artifact.model();
  if (!model.generation())
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": not compiled for generation; compile it with "
                         "moec compile --mode generate"));
  std::unique_ptr<Generator> generator(new Generator(model, backend));
  if (absl::Status status = generator->bind(weights); !status.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": ", status.message()));
  return generator;
}

absl::Status Generator::bind(const Weights &weights) {
  stream_ = backend_.createStream();
  auto allocate = [&](int64_t bytes, std::unique_ptr<DeviceBuffer> &buffer) {
    absl::StatusOr<std::unique_ptr<DeviceBuffer>> allocated =
        backend_.allocate(std::max<int64_t>(bytes, 1));
    if (allocated.ok())
      buffer = std::move(*allocated);
    return allocated.status();
  };
  const fb::Generation &generation = *model_.generation();
  if (auto status = allocate(model_.arena_bytes(), arena_); !status.ok())
    return status;
  if (auto status = allocate(generation.cache_bytes(), caches_); !status.ok())
    return status;
  // The artifact check fixed the inputs' shapes: ids and positions
  // [batch, rows], last [batch, 1].
  const fb::Value &ids =
      *model_.values()->Get(generation.prefill()->inputs()->Get(0));
  prefillRows_ = ids.shape()->Get(1);
  inputs_.resize(3);
  for (auto &input : inputs_)
    if (auto status = allocate(batch() * prefillRows_ * sizeof(int32_t), input);
        !status.ok())
      return status;

  absl::StatusOr<std::vector<void *>> params =
      placeParams(model_, weights, backend_, *stream_, uploadedParams_);
  if (!params.ok())
    return params.status();
  std::vector<void *> inputs;
  for (auto &input : inputs_)
    inputs.push_back(input->data());
  values_ = bindValues(model_, *params, inputs, arena_->data(), caches_->data());
  vocab_ = values_[generation.decode_step()->outputs()->Get(0)].shape[2];

  for (auto [program, bound] : {std::pair{generation.prefill(), &prefill_},
                                std::pair{generation.decode_step(), &decode_}}) {
    absl::StatusOr<std::vector<KernelLaunch>> launches =
        prepareLaunches(*program, values_, backend_,
                        /*constantWeights=*/true);
    if (!launches.ok())
      return launches.status();
    bound->program = program;
    bound->launches = std::move(*launches);
  }
  return stream_->synchronize();
}

void Generator::setProfiler(profile::Profiler *profiler) {
  profiler_ = profiler;
  if (!profiler)
    return;
  prefill_.profiled = profiler->addProgram(model_, *prefill_.program, "prefill");
  decode_.profiled =
      profiler->addProgram(model_, *decode_.program, "decode_step");
}

absl::Status
Generator::run(Program &program,
               const std::vector<const std::vector<int32_t> *> &inputs,
               std::vector<float> &logits) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (auto status = backend_.copyToDevice(
            inputs[i]->data(), inputs_[i]->data(),
            inputs[i]->size() * sizeof(int32_t), *stream_);
        !status.ok())
      return status;
  for (size_t i = 0; i < program.launches.size(); ++i)
    if (absl::Status status =
            runLaunch(backend_, *stream_, program.launches[i], profiler_,
                      program.profiled, i);
        !status.ok())
      return status;
  const TensorRef &out = values_[program.program->outputs()->Get(0)];
  logits.resize(out.numElements());
  if (auto status = backend_.copyToHost(out.data, logits.data(),
                                        logits.size() * sizeof(float), *stream_);
      !status.ok())
    return status;
  return stream_->synchronize();
}

absl::Status
Generator::prefill(const std::vector<std::vector<int32_t>> &prompts,
                   std::vector<float> &logits) {
  if (int64_t(prompts.size()) > batch())
    return absl::InvalidArgumentError(absl::StrCat(
        prompts.size(), " prompts, but the model was compiled for a batch of ",
        batch()));
  size_t longest = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty() || int64_t(prompts[b].size()) > capacity())
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ", b, " has ", prompts[b].size(),
          " tokens; it needs 1 to the context capacity ", capacity()));
    longest = std::max(longest, prompts[b].size());
  }
  logits.assign(batch() * vocab_, 0.0f);
  int64_t rows = prefillRows_;
  std::vector<int32_t> ids(batch() * rows), positions(batch() * rows),
      last(batch());
  std::vector<float> chunkLogits;
  for (int64_t first = 0; first < int64_t(longest); first += rows) {
    for (int64_t b = 0; b < batch(); ++b) {
      int64_t length = b < int64_t(prompts.size()) ? prompts[b].size() : 0;
      for (int64_t t = 0; t < rows; ++t) {
        bool inside = first + t < length;
        ids[b * rows + t] = inside ? prompts[b][first + t] : 0;
        positions[b * rows + t] = inside ? int32_t(first + t) : -1;
      }
      last[b] = int32_t(std::clamp<int64_t>(length - 1 - first, 0, rows - 1));
    }
    if (auto status = run(prefill_, {&ids, &positions, &last}, chunkLogits);
        !status.ok())
      return status;
    for (size_t b = 0; b < prompts.size(); ++b) {
      int64_t end = prompts[b].size();
      if (end > first && end <= first + rows)
        std::copy_n(chunkLogits.begin() + b * vocab_, vocab_,
                    logits.begin() + b * vocab_);
    }
  }
  return absl::OkStatus();
}

absl::Status Generator::decode(const std::vector<int32_t> &tokens,
                               const std::vector<int32_t> &positions,
                               std::vector<float> &logits) {
  if (int64_t(tokens.size()) != batch() || int64_t(positions.size()) != batch())
    return absl::InvalidArgumentError(
        absl::StrCat("decode needs one token and position per sequence (",
                     batch(), ")"));
  for (int64_t b = 0; b < batch(); ++b)
    if (positions[b] >= capacity())
      return absl::OutOfRangeError(absl::StrCat(
          "sequence ", b, " is at position ", positions[b],
          ", past the context capacity ", capacity()));
  return run(decode_, {&tokens, &positions}, logits);
}

} // namespace moert
