//===- Executor.h - run an artifact's program on a backend ------*- C++ -*-===//

#ifndef MOERT_EXEC_EXECUTOR_H
#define MOERT_EXEC_EXECUTOR_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Weights.h"
#include "runtime/profile/Profiler.h"

#include "absl/status/statusor.h"

#include <memory>
#include <vector>

namespace moert {

/// Binds an artifact's values to memory once (parameters, the activation
/// arena, the inputs), prepares every launch, then runs the forward program
/// as often as asked.
class Executor {
public:
  static absl::StatusOr<std::unique_ptr<Executor>>
  create(const Artifact &artifact, const Weights &weights, Backend &backend);

  /// Runs `forward` on token ids [batch, seq] (row-major int32) and copies
  /// the logits [batch, seq, vocab] (fp32) to `logits`.
  absl::Status forward(const std::vector<int32_t> &tokens,
                       std::vector<float> &logits);

  /// Reports every kernel of forward() to `profiler` from now on (waiting
  /// for each); null stops it.
  void setProfiler(profile::Profiler *profiler) {
    profiler_ = profiler;
    if (profiler)
      profiledProgram_ = profiler->addProgram(model_, *model_.forward(), "forward");
  }

  int64_t batch() const { return model_.batch(); }
  int64_t seq() const { return model_.seq(); }
  int64_t vocab() const { return vocab_; }

private:
  Executor(const fb::Model &model, Backend &backend)
      : model_(model), backend_(backend) {}
  absl::Status bind(const Weights &weights);

  const fb::Model &model_;
  Backend &backend_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<DeviceBuffer> arena_;
  std::unique_ptr<DeviceBuffer> input_;
  std::vector<std::unique_ptr<DeviceBuffer>> uploadedParams_;
  std::vector<TensorRef> values_;
  std::vector<KernelLaunch> launches_;
  int64_t vocab_ = 0;
  profile::Profiler *profiler_ = nullptr;
  int profiledProgram_ = 0;
};

} // namespace moert

#endif // MOERT_EXEC_EXECUTOR_H
