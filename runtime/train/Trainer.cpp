//===- Trainer.cpp - run an artifact's training step and update -----------===//

#include "runtime/base/JsonDepth.h"
#include "runtime/base/ReadFile.h"
#include "runtime/train/Trainer.h"

#include "runtime/base/Convert.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/exec/Binding.h"
#include "runtime/exec/RunLaunch.h"

#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <cstring>
#include <fstream>
#include <sstream>

namespace moert::train {
namespace {
constexpr int32_t kIgnoreLabel = -100;

int64_t paramCount(const fb::Param &param) { return numElements(*param.shape()); }
bool decays(const fb::Param &param) { return param.shape()->size() >= 2; }
} // namespace

absl::StatusOr<std::unique_ptr<Trainer>>
Trainer::create(const Artifact &artifact, const Weights &initial,
                Backend &backend, const OptimizerOptions &options,
                comm::Parallelism *parallel) {
  const fb::Model &model = artifact.model();
  if (!model.training())
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": has no training step; compile it with "
                         "`moec compile --mode train`"));
  if (initial.size() != model.params()->size())
    return absl::InvalidArgumentError(absl::StrCat(
        artifact.path(), ": the weights hold ", initial.size(),
        " parameters but the artifact declares ", model.params()->size()));
  if (parallel && parallel->single())
    parallel = nullptr;
  std::unique_ptr<Trainer> trainer(
      new Trainer(artifact, backend, options, parallel));
  if (absl::Status status = trainer->bind(initial); !status.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": ", status.message()));
  return trainer;
}

absl::Status Trainer::bind(const Weights &initial) {
  if (parallel_ && mirrored())
    return absl::UnimplementedError(absl::StrCat(
        "training on the ", std::string(backend_.name()),
        " backend runs on one process only, for now"));
  stream_ = backend_.createStream();
  auto allocate = [&](size_t bytes, std::unique_ptr<DeviceBuffer> &into) {
    absl::StatusOr<std::unique_ptr<DeviceBuffer>> buffer =
        backend_.allocate(std::max<size_t>(bytes, 1));
    if (buffer.ok())
      into = std::move(*buffer);
    return buffer.status();
  };
  size_t tokenBytes = size_t(batch() * seq()) * sizeof(int32_t);
  for (auto [bytes, buffer] :
       {std::pair{size_t(model_.arena_bytes()), &arena_},
        std::pair{tokenBytes, &ids_}, std::pair{tokenBytes, &labels_}})
    if (absl::Status status = allocate(bytes, *buffer); !status.ok())
      return status;

  size_t params = model_.params()->size();
  masters_.resize(params);
  computeCopies_.resize(params);
  grads_.resize(params);
  moments_.resize(params);
  std::vector<void *> computePointers(params);
  for (size_t i = 0; i < params; ++i) {
    const fb::Param &param = *model_.params()->Get(i);
    int64_t count = paramCount(param);
    DType type = fromSchema(param.dtype());
    masters_[i].resize(count);
    convertFloats(initial.data(i), type, masters_[i].data(), DType::kF32, count);
    if (type == DType::kF32) {
      computePointers[i] = masters_[i].data();
    } else {
      computeCopies_[i].resize(count * dtypeSize(type));
      std::memcpy(computeCopies_[i].data(), initial.data(i),
                  computeCopies_[i].size());
      computePointers[i] = computeCopies_[i].data();
    }
  }

  if (mirrored()) { // the kernels read device copies
    deviceParams_.resize(params);
    hostGrads_.resize(params);
    for (size_t i = 0; i < params; ++i) {
      const fb::Param &param = *model_.params()->Get(i);
      size_t bytes =
          size_t(paramCount(param)) * dtypeSize(fromSchema(param.dtype()));
      if (absl::Status status = allocate(bytes, deviceParams_[i]); !status.ok())
        return status;
      computePointers[i] = deviceParams_[i]->data();
    }
    if (absl::Status status = uploadParams(); !status.ok())
      return status;
    if (deviceOptimizer())
      if (absl::Status status = bindDeviceOptimizer(); !status.ok())
        return status;
  }
  values_ = bindValues(model_, computePointers,
                       {ids_->data(), labels_->data()}, arena_->data());

  const fb::Program &program = *model_.training()->program();
  for (int32_t input : *program.inputs()) {
    const TensorRef &ref = values_[input];
    if (ref.dtype != DType::kI32 ||
        ref.shape != std::vector<int64_t>{batch(), seq()})
      return absl::InvalidArgumentError(
          "the training inputs must be int32 ids and labels [batch, seq]");
  }
  const TensorRef &logits = values_[model_.forward()->outputs()->Get(0)];
  vocab_ = logits.shape.empty() ? 0 : logits.shape.back();

  gradOutput_.assign(params, -1);
  const auto &gradParams = *model_.training()->gradient_params();
  for (size_t k = 0; k < gradParams.size(); ++k)
    gradOutput_[gradParams.Get(k)] = program.outputs()->Get(3 + k);
  paramOfGradient_.assign(values_.size(), -1);
  for (size_t p = 0; p < gradOutput_.size(); ++p)
    if (gradOutput_[p] >= 0)
      paramOfGradient_[gradOutput_[p]] = int32_t(p);

  absl::StatusOr<std::vector<KernelLaunch>> launches =
      prepareLaunches(program, values_, backend_,
                      /*constantWeights=*/false);
  if (!launches.ok())
    return launches.status();
  launches_ = std::move(*launches);
  // The losses are computed before the backward pass starts: evaluation
  // runs the kernels up to the last one writing a loss.
  for (size_t i = 0; i < launches_.size(); ++i)
    for (int32_t id : *launches_[i].kernel->results())
      for (int loss = 0; loss < 3; ++loss)
        if (id == program.outputs()->Get(loss))
          lossKernels_ = i + 1;
  return stream_->synchronize();
}

absl::StatusOr<Losses> Trainer::run(const Batch &batch, size_t kernels,
                                     std::vector<double> *squares,
                                     profile::Profiler *profiler) {
  size_t count = size_t(this->batch() * seq());
  if (batch.ids.size() != count || batch.labels.size() != count)
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch must hold ", count, " ids and labels (batch ", this->batch(),
        " x seq ", seq(), ")"));
  for (size_t i = 0; i < count; ++i) {
    if (batch.ids[i] < 0 || batch.ids[i] >= vocab_)
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", batch.ids[i], " at position ", i,
          " is outside the vocabulary [0, ", vocab_, ")"));
    if (batch.labels[i] != kIgnoreLabel &&
        (batch.labels[i] < 0 || batch.labels[i] >= vocab_))
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", batch.labels[i], " at position ", i,
          " is outside the vocabulary [0, ", vocab_, ")"));
  }
  for (auto [host, device] : {std::pair{&batch.ids, ids_.get()},
                              std::pair{&batch.labels, labels_.get()}})
    if (auto status = backend_.copyToDevice(host->data(), device->data(),
                                            count * sizeof(int32_t), *stream_);
        !status.ok())
      return status;
  // Phases: the launches up to the last loss are the forward pass.
  auto phaseStart = profile::Clock::now();
  auto endPhase = [&](const char *name) {
    auto now = profile::Clock::now();
    if (profiler)
      profiler->phase(name, "phase", phaseStart, now);
    phaseStart = now;
  };
  for (size_t i = 0; i < kernels; ++i) {
    if (i == lossKernels_ && i > 0)
      endPhase("forward");
    const KernelLaunch &launch = launches_[i];
    if (absl::Status status = runLaunch(backend_, *stream_, launch, profiler,
                                        profiledProgram_, i);
        !status.ok())
      return status;
    if (squares)
      if (absl::Status status = takeSquares(launch, *squares); !status.ok())
        return status;
  }
  endPhase(kernels > lossKernels_ ? "backward" : "forward");
  if (absl::Status status = stream_->synchronize(); !status.ok())
    return status;
  const auto &outputs = *model_.training()->program()->outputs();
  double read[3];
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<float> loss = readScalar(outputs.Get(i));
    if (!loss.ok())
      return loss.status();
    read[i] = *loss;
  }
  Losses losses{read[0], read[1], read[2], 0.0};
  losses.total = losses.ce + model_.training()->aux_loss_coef() * losses.aux +
                 model_.training()->z_loss_coef() * losses.z;
  return losses;
}

absl::Status Trainer::takeSquares(const KernelLaunch &launch,
                                  std::vector<double> &squares) {
  bool synchronized = false;
  for (int32_t id : *launch.kernel->results()) {
    int32_t p = paramOfGradient_[id];
    if (p < 0)
      continue;
    if (!synchronized) { // the gradient is read on the host
      if (absl::Status status = stream_->synchronize(); !status.ok())
        return status;
      synchronized = true;
    }
    squares[p] =
        sumOfSquares({values_[id].as<float>(), int64_t(masters_[p].size())});
    if (!std::isfinite(squares[p]) && firstNonFiniteGradient_ < 0)
      firstNonFiniteGradient_ = p;
  }
  return absl::OkStatus();
}

void Trainer::setProfiler(profile::Profiler *profiler) {
  profiler_ = profiler;
  if (profiler)
    profiledProgram_ = profiler->addProgram(
        model_, *model_.training()->program(), "training step");
}

absl::StatusOr<Losses> Trainer::evaluate(const Batch &batch) {
  return run(batch, lossKernels_, nullptr, nullptr);
}

absl::StatusOr<StepReport> Trainer::step(const std::vector<Batch> &microBatches) {
  if (microBatches.empty())
    return absl::InvalidArgumentError("a step needs at least one micro-batch");
  StepReport report;
  const float scale = 1.0f / float(microBatches.size());
  // One micro-batch on one process, in host memory: each gradient's sum of
  // squares is taken as it is written. Otherwise over the accumulated means
  // (summed over the ranks), after the last.
  bool single = microBatches.size() == 1 && !parallel_ && !mirrored();
  firstNonFiniteGradient_ = -1;
  std::vector<double> squares(masters_.size(), 0.0);
  for (size_t m = 0; m < microBatches.size(); ++m) {
    absl::StatusOr<Losses> losses = run(microBatches[m], launches_.size(),
                                        single ? &squares : nullptr, profiler_);
    if (!losses.ok())
      return losses.status();
    report.losses.ce += losses->ce * scale;
    report.losses.aux += losses->aux * scale;
    report.losses.z += losses->z * scale;
    report.losses.total += losses->total * scale;
    if (deviceOptimizer()) {
      if (microBatches.size() > 1)
        if (auto status = accumulateOnDevice(m == 0, scale); !status.ok())
          return status;
      continue;
    }
    if (mirrored())
      if (auto status = downloadGradients(); !status.ok())
        return status;
    if (microBatches.size() > 1)
      accumulateGradients(m == 0, scale);
  }
  if (deviceOptimizer())
    return deviceStep(report, microBatches.size() > 1);
  // One micro-batch: the optimiser reads the program's gradient outputs in
  // place. Several: the fp32 means accumulated in grads_.
  gradients_.clear();
  for (size_t p = 0; p < masters_.size(); ++p) {
    int64_t count = int64_t(masters_[p].size());
    if (microBatches.size() > 1)
      gradients_.push_back({grads_[p].data(), count});
    else if (gradOutput_[p] >= 0)
      gradients_.push_back({gradientOutput(p), count});
    else
      gradients_.push_back({zeroGradient(count), count});
  }
  {
    // The global norm, then clip_grad_norm_'s scale: clip / (norm + 1e-6)
    // when that is below 1 (the optimiser applies it).
    profile::Profiler::Scope phase(profiler_, "gradient clipping", "phase");
    if (single) {
      double sum = 0;
      for (double square : squares) // in parameter order, as globalNorm
        sum += square;
      report.gradNorm = std::sqrt(sum);
    } else if (parallel_) {
      if (auto status = reduceGradients(microBatches.size() > 1);
          !status.ok())
        return status;
      absl::StatusOr<double> norm = parallelNorm();
      if (!norm.ok())
        return norm.status();
      report.gradNorm = *norm;
    } else {
      report.gradNorm = globalNorm(gradients_);
    }
  }
  absl::StatusOr<std::optional<double>> clipScale = admitStep(report);
  if (!clipScale.ok())
    return clipScale.status();
  if (!*clipScale)
    return report; // skipped
  profile::Profiler::Scope phase(profiler_, "optimizer", "phase");
  for (size_t p = 0; p < masters_.size(); ++p) {
    DType type = fromSchema(model_.params()->Get(p)->dtype());
    uint16_t *bf16Copy =
        type == DType::kBF16
            ? reinterpret_cast<uint16_t *>(computeCopies_[p].data())
            : nullptr;
    adamwUpdate(masters_[p].data(), gradients_[p].data, moments_[p],
                int64_t(masters_[p].size()), decays(*model_.params()->Get(p)),
                report.lr, updates_, **clipScale, options_, bf16Copy);
    if (type == DType::kF16) // rare: rounded in a second pass
      convertFloats(masters_[p].data(), DType::kF32, computeCopies_[p].data(),
                    type, int64_t(masters_[p].size()));
  }
  if (mirrored())
    if (auto status = uploadParams(); !status.ok())
      return status;
  return report;
}

absl::StatusOr<std::optional<double>>
Trainer::admitStep(StepReport &report) {
  report.lr = learningRate(options_, steps_);
  ++steps_;
  if (!std::isfinite(report.losses.total) || !std::isfinite(report.gradNorm)) {
    std::string what = describeNonFinite(report.losses);
    if (!options_.skipNonFinite)
      return absl::DataLossError(absl::StrCat(
          what, "; stopped before updating the weights (--skip-nonfinite "
                "skips such steps instead)"));
    report.skipped = what;
    return std::nullopt;
  }
  ++updates_;
  // clip_grad_norm_'s scale: clip / (norm + 1e-6) when that is below 1.
  return options_.clip > 0
             ? std::min(1.0, options_.clip / (report.gradNorm + 1e-6))
             : 1.0;
}

absl::StatusOr<StepReport> Trainer::deviceStep(StepReport report,
                                               bool accumulated) {
  gradients_.clear();
  {
    profile::Profiler::Scope phase(profiler_, "gradient clipping", "phase");
    absl::StatusOr<double> norm = deviceNorm(accumulated);
    if (!norm.ok())
      return norm.status();
    report.gradNorm = *norm;
  }
  bool finite =
      std::isfinite(report.losses.total) && std::isfinite(report.gradNorm);
  if (keepHostGradients_ || !finite)
    if (auto status = hostGradientsFromDevice(accumulated); !status.ok())
      return status;
  absl::StatusOr<std::optional<double>> clipScale = admitStep(report);
  if (!clipScale.ok())
    return clipScale.status();
  if (!*clipScale)
    return report; // skipped
  profile::Profiler::Scope phase(profiler_, "optimizer", "phase");
  if (auto status = updateOnDevice(accumulated, report.lr, **clipScale);
      !status.ok())
    return status;
  return report;
}

absl::Status Trainer::bindDeviceOptimizer() {
  DeviceOptimizer &optimizer = *deviceOptimizer();
  size_t params = masters_.size();
  deviceMasters_.resize(params);
  deviceAvg_.resize(params);
  deviceAvgSq_.resize(params);
  deviceAccumulators_.resize(params);
  int64_t most = 1;
  for (size_t p = 0; p < params; ++p) {
    size_t bytes = masters_[p].size() * sizeof(float);
    most = std::max<int64_t>(most, int64_t(masters_[p].size()));
    for (auto *buffer : {&deviceAvg_[p], &deviceAvgSq_[p]}) {
      absl::StatusOr<std::unique_ptr<DeviceBuffer>> allocated =
          backend_.allocate(std::max<size_t>(bytes, 1));
      if (!allocated.ok())
        return allocated.status();
      *buffer = std::move(*allocated);
    }
    if (!computeCopies_[p].empty()) { // the fp32 master beside its copy
      absl::StatusOr<std::unique_ptr<DeviceBuffer>> allocated =
          backend_.allocate(std::max<size_t>(bytes, 1));
      if (!allocated.ok())
        return allocated.status();
      deviceMasters_[p] = std::move(*allocated);
    }
  }
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> zeros =
      backend_.allocate(most * sizeof(float));
  if (!zeros.ok())
    return zeros.status();
  deviceZeros_ = std::move(*zeros);
  if (auto status = optimizer.zero(static_cast<float *>(deviceZeros_->data()),
                                   most, *stream_);
      !status.ok())
    return status;
  return pushOptimizerState();
}

const float *Trainer::deviceGradient(size_t p, bool accumulated) const {
  if (accumulated)
    return static_cast<const float *>(deviceAccumulators_[p]->data());
  if (gradOutput_[p] >= 0)
    return values_[gradOutput_[p]].as<float>();
  return static_cast<const float *>(deviceZeros_->data());
}

absl::Status Trainer::accumulateOnDevice(bool first, float scale) {
  for (size_t p = 0; p < masters_.size(); ++p) {
    int64_t count = int64_t(masters_[p].size());
    if (!deviceAccumulators_[p]) {
      absl::StatusOr<std::unique_ptr<DeviceBuffer>> allocated =
          backend_.allocate(std::max<size_t>(count * sizeof(float), 1));
      if (!allocated.ok())
        return allocated.status();
      deviceAccumulators_[p] = std::move(*allocated);
    }
    auto *acc = static_cast<float *>(deviceAccumulators_[p]->data());
    absl::Status status =
        gradOutput_[p] < 0
            ? deviceOptimizer()->zero(acc, count, *stream_)
            : deviceOptimizer()->accumulate(
                  acc, values_[gradOutput_[p]].as<float>(), count, scale,
                  first, *stream_);
    if (!status.ok())
      return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::deviceNorm(bool accumulated) {
  double sum = 0; // in parameter order, as globalNorm
  for (size_t p = 0; p < masters_.size(); ++p) {
    absl::StatusOr<double> squares = deviceOptimizer()->sumOfSquares(
        deviceGradient(p, accumulated), int64_t(masters_[p].size()), *stream_);
    if (!squares.ok())
      return squares.status();
    sum += *squares;
  }
  return std::sqrt(sum);
}

absl::Status Trainer::updateOnDevice(bool accumulated, double lr,
                                     double clipScale) {
  for (size_t p = 0; p < masters_.size(); ++p) {
    const fb::Param &param = *model_.params()->Get(p);
    DType type = fromSchema(param.dtype());
    if (auto status = deviceOptimizer()->adamw(
            deviceMaster(p), deviceGradient(p, accumulated),
            static_cast<float *>(deviceAvg_[p]->data()),
            static_cast<float *>(deviceAvgSq_[p]->data()),
            int64_t(masters_[p].size()),
            adamwStep(decays(param), lr, updates_, clipScale, options_),
            deviceMasters_[p] ? deviceParams_[p]->data() : nullptr, type,
            *stream_);
        !status.ok())
      return status;
  }
  return stream_->synchronize();
}

absl::Status Trainer::hostGradientsFromDevice(bool accumulated) {
  gradients_.clear();
  for (size_t p = 0; p < masters_.size(); ++p) {
    hostGrads_[p].resize(masters_[p].size());
    if (auto status = copyDown(deviceGradient(p, accumulated),
                               hostGrads_[p].data(),
                               hostGrads_[p].size() * sizeof(float));
        !status.ok())
      return status;
    gradients_.push_back({hostGrads_[p].data(), int64_t(hostGrads_[p].size())});
  }
  return absl::OkStatus();
}

absl::Status Trainer::pullOptimizerState() {
  for (size_t p = 0; p < masters_.size(); ++p) {
    size_t bytes = masters_[p].size() * sizeof(float);
    if (auto status = copyDown(deviceMaster(p), masters_[p].data(), bytes);
        !status.ok())
      return status;
    if (!computeCopies_[p].empty())
      if (auto status = copyDown(deviceParams_[p]->data(),
                                 computeCopies_[p].data(),
                                 computeCopies_[p].size());
          !status.ok())
        return status;
    if (updates_ == 0)
      continue; // no moments yet: save() writes none
    moments_[p].expAvg.resize(masters_[p].size());
    moments_[p].expAvgSq.resize(masters_[p].size());
    for (auto [from, into] :
         {std::pair{&deviceAvg_[p], &moments_[p].expAvg},
          std::pair{&deviceAvgSq_[p], &moments_[p].expAvgSq}})
      if (auto status = copyDown((*from)->data(), into->data(), bytes);
          !status.ok())
        return status;
  }
  return absl::OkStatus();
}

absl::Status Trainer::pushOptimizerState() {
  for (size_t p = 0; p < masters_.size(); ++p) {
    size_t bytes = masters_[p].size() * sizeof(float);
    if (deviceMasters_[p])
      if (auto status =
              copyUp(masters_[p].data(), deviceMasters_[p]->data(), bytes);
          !status.ok())
        return status;
    for (auto [host, device] :
         {std::pair{&moments_[p].expAvg, &deviceAvg_[p]},
          std::pair{&moments_[p].expAvgSq, &deviceAvgSq_[p]}}) {
      absl::Status status =
          host->empty()
              ? deviceOptimizer()->zero(static_cast<float *>((*device)->data()),
                                        int64_t(masters_[p].size()), *stream_)
              : copyUp(host->data(), (*device)->data(), bytes);
      if (!status.ok())
        return status;
    }
  }
  return stream_->synchronize();
}

absl::Status Trainer::copyDown(const void *device, void *host, size_t bytes) {
  if (auto status = backend_.copyToHost(device, host, bytes, *stream_);
      !status.ok())
    return status;
  return stream_->synchronize();
}

absl::Status Trainer::copyUp(const void *host, void *device, size_t bytes) {
  return backend_.copyToDevice(host, device, bytes, *stream_);
}

absl::Status Trainer::uploadParams() {
  for (size_t p = 0; p < masters_.size(); ++p) {
    const void *source = computeCopies_[p].empty()
                             ? static_cast<const void *>(masters_[p].data())
                             : computeCopies_[p].data();
    if (auto status = backend_.copyToDevice(source, deviceParams_[p]->data(),
                                            deviceParams_[p]->size(), *stream_);
        !status.ok())
      return status;
  }
  return stream_->synchronize();
}

absl::Status Trainer::downloadGradients() {
  for (size_t p = 0; p < masters_.size(); ++p) {
    if (gradOutput_[p] < 0)
      continue;
    hostGrads_[p].resize(masters_[p].size());
    if (auto status = backend_.copyToHost(
            values_[gradOutput_[p]].data, hostGrads_[p].data(),
            hostGrads_[p].size() * sizeof(float), *stream_);
        !status.ok())
      return status;
  }
  return stream_->synchronize();
}

absl::StatusOr<float> Trainer::readScalar(int32_t value) {
  float scalar = 0;
  if (auto status = backend_.copyToHost(values_[value].data, &scalar,
                                        sizeof(float), *stream_);
      !status.ok())
    return status;
  return scalar;
}

absl::Status Trainer::reduceGradients(bool accumulated) {
  for (size_t p = 0; p < gradients_.size(); ++p) {
    if (gradOutput_[p] < 0)
      continue; // zeros everywhere
    comm::Communicator &ranks =
        isStacked(*model_.params()->Get(p)) ? *parallel_->replicas : *parallel_->world;
    if (ranks.size() == 1)
      continue;
    float *grad = accumulated ? grads_[p].data()
                              : const_cast<float *>(gradientOutput(p));
    if (auto status = ranks.allReduceSum(grad, gradients_[p].count);
        !status.ok())
      return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::parallelNorm() {
  // Dense gradients are the same on every rank; the expert group's ranks
  // hold one share of the experts' each.
  double dense = 0, experts = 0;
  for (size_t p = 0; p < gradients_.size(); ++p)
    (isStacked(*model_.params()->Get(p)) ? experts : dense) += sumOfSquares(gradients_[p]);
  if (auto status = parallel_->experts->allReduceSum(&experts, 1);
      !status.ok())
    return status;
  return std::sqrt(dense + experts);
}

void Trainer::accumulateGradients(bool first, float scale) {
  for (size_t p = 0; p < masters_.size(); ++p) {
    std::vector<float> &acc = grads_[p];
    int64_t count = int64_t(masters_[p].size());
    acc.resize(count);
    if (gradOutput_[p] < 0) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      continue;
    }
    const float *grad = gradientOutput(p);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; ++i)
      acc[i] = (first ? 0.0f : acc[i]) + grad[i] * scale;
  }
}

std::string Trainer::describeNonFinite(const Losses &losses) const {
  for (auto [name, value] : {std::pair{"loss.ce", losses.ce},
                             std::pair{"loss.aux", losses.aux},
                             std::pair{"loss.z", losses.z}})
    if (!std::isfinite(value))
      return absl::StrCat("the loss '", name, "' is ", value);
  // From the first gradient the backward pass found non-finite as it wrote
  // them (one micro-batch), else in parameter order.
  size_t first = firstNonFiniteGradient_ >= 0 ? size_t(firstNonFiniteGradient_) : 0;
  for (size_t p = first; p < gradients_.size(); ++p) {
    const GradientView &grad = gradients_[p];
    const float *end = grad.data + grad.count;
    const float *value = std::find_if(
        grad.data, end, [](float v) { return !std::isfinite(v); });
    if (value != end)
      return absl::StrCat("the gradient of '",
                          model_.params()->Get(p)->name()->str(), "' is ",
                          *value);
  }
  return "the total loss is not finite";
}

const float *Trainer::zeroGradient(int64_t count) {
  if (int64_t(zeros_.size()) < count)
    zeros_.assign(count, 0.0f);
  return zeros_.data();
}

std::vector<TensorToWrite>
Trainer::gradientTensors(const std::string &prefix) const {
  std::vector<TensorToWrite> tensors;
  for (size_t p = 0; p < gradients_.size(); ++p) {
    const fb::Param &param = *model_.params()->Get(p);
    std::vector<int64_t> shape(param.shape()->begin(), param.shape()->end());
    std::string name = param.name()->str();
    if (name.find('*') == std::string::npos) {
      tensors.push_back({prefix + name, DType::kF32, shape, gradients_[p].data});
      continue;
    }
    int64_t experts = shape[0];
    shape.erase(shape.begin());
    int64_t perExpert = gradients_[p].count / std::max<int64_t>(experts, 1);
    for (int64_t e = 0; e < experts; ++e)
      tensors.push_back({prefix + expertName(name, e), DType::kF32, shape,
                         gradients_[p].data + e * perExpert});
  }
  return tensors;
}

absl::Status Trainer::refreshComputeCopies() {
  for (size_t p = 0; p < masters_.size(); ++p)
    if (!computeCopies_[p].empty())
      convertFloats(masters_[p].data(), DType::kF32, computeCopies_[p].data(),
                    fromSchema(model_.params()->Get(p)->dtype()),
                    int64_t(masters_[p].size()));
  return mirrored() ? uploadParams() : absl::OkStatus();
}

absl::Status
Trainer::save(const std::string &dir, const nlohmann::json &runState,
              const std::map<std::string, std::string> &extraFiles,
              uint64_t maxShardBytes) {
  if (deviceOptimizer())
    if (auto status = pullOptimizerState(); !status.ok())
      return status;
  // Each kind of state, whole: on several ranks the experts are gathered
  // on rank 0, which writes.
  std::vector<std::vector<uint8_t>> gathered;
  int64_t shares = 1;
  size_t count = masters_.size();
  std::vector<const void *> compute(count), master(count), avg(count),
      avgSq(count);
  for (size_t p = 0; p < count; ++p) {
    compute[p] = computeCopies_[p].empty()
                     ? static_cast<const void *>(masters_[p].data())
                     : computeCopies_[p].data();
    master[p] = masters_[p].data();
    avg[p] = moments_[p].expAvg.data();
    avgSq[p] = moments_[p].expAvgSq.data();
  }
  bool moments = updates_ > 0; // every rank has updated alike
  std::pair<std::vector<const void *> *, size_t> kinds[] = {
      {&compute, 0}, {&master, sizeof(float)}, {&avg, sizeof(float)},
      {&avgSq, sizeof(float)}};
  for (auto [pointers, elementBytes] : kinds) {
    if (!moments && (pointers == &avg || pointers == &avgSq))
      continue;
    absl::StatusOr<int64_t> held = gatherWholeParams(
        model_, parallel_, *pointers, elementBytes, gathered);
    if (!held.ok())
      return held.status();
    shares = *held;
  }
  if (parallel_ && parallel_->rank() != 0)
    return absl::OkStatus(); // rank 0 writes

  std::vector<TensorToWrite> weights =
      checkpointTensors(model_, compute, shares);
  std::vector<TensorToWrite> optimizer;
  for (size_t p = 0; p < count; ++p) {
    const fb::Param &param = *model_.params()->Get(p);
    std::vector<int64_t> shape(param.shape()->begin(), param.shape()->end());
    if (isStacked(param))
      shape[0] *= shares;
    std::string name = param.name()->str();
    optimizer.push_back({"master." + name, DType::kF32, shape, master[p]});
    if (moments && !moments_[p].expAvg.empty()) {
      optimizer.push_back({"exp_avg." + name, DType::kF32, shape, avg[p]});
      optimizer.push_back(
          {"exp_avg_sq." + name, DType::kF32, shape, avgSq[p]});
    }
  }
  return writeCheckpointDirectory(
      dir, model_.config_json() ? model_.config_json()->str() : "{}",
      [&](const std::string &staging) -> absl::Status {
        if (auto status = writeWeightShards(staging, weights, maxShardBytes,
                                            {{"format", "pt"}});
            !status.ok())
          return status;
        std::string folder = staging + "/";
        if (auto status = writeSafetensors(folder + "optimizer.safetensors",
                                           optimizer);
            !status.ok())
          return status;
        std::map<std::string, std::string> files = extraFiles;
        files["trainer_state.json"] =
            nlohmann::json({{"step", steps_}, {"updates", updates_}, {"run", runState}})
                .dump(2) +
            "\n";
        for (const auto &[name, contents] : files) {
          std::ofstream out(folder + name, std::ios::binary);
          out << contents;
          out.close();
          if (!out)
            return absl::InternalError(absl::StrCat("cannot write ", folder, name));
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<nlohmann::json> Trainer::restore(const std::string &dir) {
  std::string statePath = dir + "/trainer_state.json";
  absl::StatusOr<std::string> text = readFile(statePath, "the trainer state");
  if (!text.ok())
    return absl::Status(text.status().code(),
                        absl::StrCat(text.status().message(), " (is ", dir,
                                     " a training checkpoint?)"));
  if (findJsonTooDeep(*text) != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(
        statePath, ": malformed JSON: nested deeper than ", kMaxJsonDepth,
        " levels"));
  nlohmann::json state = nlohmann::json::parse(*text, nullptr, false);
  if (state.is_discarded() || !state.contains("step") ||
      !state["step"].is_number_integer() || state["step"].get<int64_t>() < 0 ||
      !state.contains("run"))
    return absl::InvalidArgumentError(
        absl::StrCat(statePath, ": field 'step' or 'run' is missing or bad"));

  absl::StatusOr<SafetensorsFile> file =
      SafetensorsFile::open(dir + "/optimizer.safetensors");
  if (!file.ok())
    return file.status();
  int64_t step = state["step"].get<int64_t>();
  // Steps that updated the weights (states saved before steps could be
  // skipped have none): the moments exist only after one.
  int64_t updates = step;
  if (state.contains("updates"))
    updates = state["updates"].is_number_integer()
                  ? state["updates"].get<int64_t>()
                  : -1;
  if (updates < 0 || updates > step)
    return absl::InvalidArgumentError(
        absl::StrCat(statePath, ": field 'updates' is outside [0, step]"));
  // A rank takes its share of the experts' state, saved whole.
  auto load = [&](const std::string &name, std::vector<float> &into,
                  int64_t count, bool share) -> absl::Status {
    const TensorView *view = file->find(name);
    int64_t shares = share ? share_.shares : 1;
    if (!view || view->dtype != DType::kF32 ||
        view->bytes != size_t(count * shares) * sizeof(float))
      return absl::InvalidArgumentError(absl::StrCat(
          file->path(), ": tensor '", name,
          "' is missing or is not fp32 of the parameter's shape"));
    into.resize(count);
    std::memcpy(into.data(),
                reinterpret_cast<const float *>(view->data) +
                    (share ? share_.index * count : 0),
                size_t(count) * sizeof(float));
    return absl::OkStatus();
  };
  for (size_t p = 0; p < masters_.size(); ++p) {
    const fb::Param &param = *model_.params()->Get(p);
    std::string name = param.name()->str();
    int64_t count = paramCount(param);
    bool share = isStacked(*model_.params()->Get(p));
    if (auto status = load("master." + name, masters_[p], count, share);
        !status.ok())
      return status;
    moments_[p] = AdamState();
    if (updates > 0) {
      for (auto [prefix, into] :
           {std::pair{"exp_avg.", &moments_[p].expAvg},
            std::pair{"exp_avg_sq.", &moments_[p].expAvgSq}})
        if (auto status = load(prefix + name, *into, count, share);
            !status.ok())
          return status;
    }
  }
  steps_ = step;
  updates_ = updates;
  if (auto status = refreshComputeCopies(); !status.ok())
    return status;
  if (deviceOptimizer())
    if (auto status = pushOptimizerState(); !status.ok())
      return status;
  return state["run"];
}

} // namespace moert::train
