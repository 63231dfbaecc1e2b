//===- Executor.cpp - run an artifact's program on a backend --------------===//

#include "runtime/exec/Executor.h"

#include "runtime/exec/Binding.h"
#include "runtime/exec/RunLaunch.h"

#include "absl/strings/str_cat.h"

namespace moert {

absl::StatusOr<std::unique_ptr<Executor>>
Executor::create(const Artifact &artifact, const Weights &weights,
                 Backend &backend) {
  const fb::Model &model = artifact.model();
  if (!model.forward())
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": compiled for generation (--mode generate), which "
                         "runs with moe-run generate"));
  const fb::Program &program = *model.forward();
  if (program.inputs()->size() != 1 || program.outputs()->size() != 1)
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": forward must map token ids to logits"));
  std::unique_ptr<Executor> executor(new Executor(model, backend));
  if (absl::Status status = executor->bind(weights); !status.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": ", status.message()));
  return executor;
}

absl::Status Executor::bind(const Weights &weights) {
  stream_ = backend_.createStream();
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> arena =
      backend_.allocate(std::max<int64_t>(model_.arena_bytes(), 1));
  if (!arena.ok())
    return arena.status();
  arena_ = std::move(*arena);

  const fb::Value &tokens = *model_.values()->Get(model_.forward()->inputs()->Get(0));
  if (tokens.dtype() != fb::DType::I32 || tokens.shape()->size() != 2 ||
      tokens.shape()->Get(0) != model_.batch() ||
      tokens.shape()->Get(1) != model_.seq())
    return absl::InvalidArgumentError(
        "the program input must be int32 token ids [batch, seq]");
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> input =
      backend_.allocate(model_.batch() * model_.seq() * sizeof(int32_t));
  if (!input.ok())
    return input.status();
  input_ = std::move(*input);

  absl::StatusOr<std::vector<void *>> params =
      placeParams(model_, weights, backend_, *stream_, uploadedParams_);
  if (!params.ok())
    return params.status();
  values_ = bindValues(model_, *params, {input_->data()}, arena_->data());

  const TensorRef &logits = values_[model_.forward()->outputs()->Get(0)];
  if (logits.dtype != DType::kF32 || logits.shape.size() != 3 ||
      logits.shape[0] != model_.batch() || logits.shape[1] != model_.seq())
    return absl::InvalidArgumentError(
        "the program output must be fp32 logits [batch, seq, vocab]");
  vocab_ = logits.shape[2];

  absl::StatusOr<std::vector<KernelLaunch>> launches =
      prepareLaunches(*model_.forward(), values_, backend_,
                      /*constantWeights=*/true);
  if (!launches.ok())
    return launches.status();
  launches_ = std::move(*launches);
  return stream_->synchronize();
}

absl::Status Executor::forward(const std::vector<int32_t> &tokens,
                               std::vector<float> &logits) {
  size_t count = size_t(batch() * seq());
  if (tokens.size() != count)
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", count, " token ids (batch ", batch(), " x seq ", seq(),
        "), got ", tokens.size()));
  for (size_t i = 0; i < count; ++i)
    if (tokens[i] < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", tokens[i], " at position ", i,
                       " is negative"));
  if (auto status = backend_.copyToDevice(tokens.data(), input_->data(),
                                          count * sizeof(int32_t), *stream_);
      !status.ok())
    return status;
  for (size_t i = 0; i < launches_.size(); ++i)
    if (absl::Status status = runLaunch(backend_, *stream_, launches_[i],
                                        profiler_, profiledProgram_, i);
        !status.ok())
      return status;
  const TensorRef &out = values_[model_.forward()->outputs()->Get(0)];
  logits.resize(out.numElements());
  if (auto status = backend_.copyToHost(out.data, logits.data(),
                                        logits.size() * sizeof(float), *stream_);
      !status.ok())
    return status;
  return stream_->synchronize();
}

} // namespace moert
