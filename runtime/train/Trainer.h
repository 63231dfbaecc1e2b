//===- Trainer.h - run an artifact's training step and update ---*- C++ -*-===//
//
// Binds the training program of an artifact compiled with
// `moec compile --mode train`: fp32 master weights (the optimiser updates
// them), compute copies in the artifact's dtypes (the kernels read them;
// for fp32 parameters they are the masters), fp32 gradient accumulators.
// One step runs the program once per micro-batch, averages the gradients,
// clips them by global norm and applies AdamW.
//
// On a backend that does not share host memory (CUDA), the program, the
// parameters and, where the backend offers a DeviceOptimizer, the masters,
// moments and AdamW live on the device: the host sees the losses and the
// gradient norm each step, the rest only when a checkpoint is saved or
// restored. Without one, each step brings the gradients to the host and
// sends the updated compute copies back.
//
// On a rank of an expert-parallel run, the losses are those of every rank's
// micro-batch together (the loss kernels see to it) and the gradients this
// rank's share of them: the dense ones are summed over all ranks, each
// expert's over the ranks holding a copy of it, before the norm is taken.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TRAIN_TRAINER_H
#define MOERT_TRAIN_TRAINER_H

#include "runtime/artifact/Artifact.h"
#include "runtime/checkpoint/WeightShards.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Weights.h"
#include "runtime/profile/Profiler.h"
#include "runtime/train/AdamW.h"

#include "absl/status/statusor.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moert::train {

/// One micro-batch: token ids and next-token labels, [batch, seq] each;
/// label -100 marks a position that predicts nothing.
struct Batch {
  std::vector<int32_t> ids, labels;
};

struct Losses {
  double ce = 0, aux = 0, z = 0, total = 0;
};

struct StepReport {
  Losses losses;      // means over the micro-batches
  double gradNorm = 0; // before clipping
  double lr = 0;
  /// With skipNonFinite, why the step updated nothing ("the gradient of
  /// 'lm_head.weight' is nan"); empty when it did.
  std::string skipped;
};

class Trainer {
public:
  /// `parallel`: this rank's place in a multi-process run (null: one
  /// process); `initial` then holds this rank's share of the experts.
  static absl::StatusOr<std::unique_ptr<Trainer>>
  create(const Artifact &artifact, const Weights &initial, Backend &backend,
         const OptimizerOptions &options,
         comm::Parallelism *parallel = nullptr);

  /// One optimiser step over `microBatches` (at least one). A loss or
  /// gradient norm that is not finite updates nothing: an error naming the
  /// first tensor that went non-finite, or with skipNonFinite a report
  /// that says so.
  absl::StatusOr<StepReport> step(const std::vector<Batch> &microBatches);
  /// The losses of a batch without updating anything (forward and losses
  /// only).
  absl::StatusOr<Losses> evaluate(const Batch &batch);

  int64_t stepsDone() const { return steps_; }
  /// Reports every kernel launch of the steps from now on to `profiler`
  /// (waiting for each), and the phases of a step: forward, backward,
  /// gradient clipping, optimizer. Evaluations are not profiled.
  void setProfiler(profile::Profiler *profiler);
  /// The gradients of the last step (means over its micro-batches, before
  /// clipping), as fp32 checkpoint tensors named `prefix` + the HF name.
  /// Valid until the next step.
  std::vector<TensorToWrite> gradientTensors(const std::string &prefix) const;
  /// Keeps each step's gradients in host memory for gradientTensors() even
  /// where the optimiser runs on the device (which otherwise never copies
  /// them).
  void setKeepHostGradients(bool keep) { keepHostGradients_ = keep; }
  int64_t batch() const { return model_.batch(); }
  int64_t seq() const { return model_.seq(); }
  int64_t vocab() const { return vocab_; }

  /// Writes a Hugging Face checkpoint directory (config.json, the weights
  /// in the artifact's dtypes in shards of at most `maxShardBytes`), the
  /// training state (optimizer.safetensors: masters and moments;
  /// trainer_state.json: the step and `runState`) and `extraFiles` (name ->
  /// contents), atomically. On several ranks every rank must call it: the
  /// experts are gathered and rank 0 writes what one process would.
  absl::Status save(const std::string &dir, const nlohmann::json &runState,
                    const std::map<std::string, std::string> &extraFiles,
                    uint64_t maxShardBytes = kDefaultMaxShardBytes);
  /// Restores masters, moments and the step from a directory save() wrote
  /// (on a rank, its share of the experts); returns the saved `runState`.
  absl::StatusOr<nlohmann::json> restore(const std::string &dir);

private:
  Trainer(const Artifact &artifact, Backend &backend,
          const OptimizerOptions &options, comm::Parallelism *parallel)
      : model_(artifact.model()), backend_(backend),
        options_(options), parallel_(parallel),
        share_(ExpertShare::ofRank(model_, parallel ? parallel->rank() : 0)) {}
  absl::Status bind(const Weights &initial);
  /// Runs the first `kernels` launches on `batch`; returns the losses.
  /// With `squares`, also each parameter's gradient sumOfSquares, taken
  /// right after the kernel that writes it, while it is still in cache.
  absl::StatusOr<Losses> run(const Batch &batch, size_t kernels,
                             std::vector<double> *squares,
                             profile::Profiler *profiler);
  /// squares[p] = sumOfSquares of each gradient output `launch` wrote.
  absl::Status takeSquares(const KernelLaunch &launch,
                           std::vector<double> &squares);
  /// grads_ = (first ? 0 : grads_) + scale * this run's gradient outputs.
  void accumulateGradients(bool first, float scale);
  /// Sums the step's gradients (`accumulated` in grads_, else the
  /// program's outputs) over the ranks that share them.
  absl::Status reduceGradients(bool accumulated);
  /// The global norm of the step's gradients over all ranks.
  absl::StatusOr<double> parallelNorm();
  const float *zeroGradient(int64_t count);
  /// "the loss 'loss.ce' is nan", "the gradient of 'lm_head.weight' is inf":
  /// the first of the step's tensors that is not finite.
  std::string describeNonFinite(const Losses &losses) const;
  /// Rounds the masters into the compute copies (and sends them to the
  /// device).
  absl::Status refreshComputeCopies();

  /// With a device backend: the parameters' compute copies sent to the
  /// device, the program's gradient outputs brought to the host, a scalar
  /// read.
  absl::Status uploadParams();
  absl::Status downloadGradients();
  absl::StatusOr<float> readScalar(int32_t value);
  absl::Status copyDown(const void *device, void *host, size_t bytes);
  absl::Status copyUp(const void *host, void *device, size_t bytes);

  /// With a DeviceOptimizer: the device state bound, a step's optimiser
  /// work there, and the host mirrors brought up to date (for a save) or
  /// sent (after a restore).
  DeviceOptimizer *deviceOptimizer() const {
    return mirrored() ? backend_.optimizer() : nullptr;
  }
  absl::Status bindDeviceOptimizer();
  /// After the step's norm: its learning rate and count, then the clipping
  /// scale of an update, nothing for a skipped non-finite step, or the
  /// error that stops training.
  absl::StatusOr<std::optional<double>> admitStep(StepReport &report);
  /// The rest of step() with a DeviceOptimizer: norm, checks, AdamW.
  absl::StatusOr<StepReport> deviceStep(StepReport report, bool accumulated);
  absl::Status accumulateOnDevice(bool first, float scale);
  absl::StatusOr<double> deviceNorm(bool accumulated);
  absl::Status updateOnDevice(bool accumulated, double lr, double clipScale);
  absl::Status hostGradientsFromDevice(bool accumulated);
  absl::Status pullOptimizerState();
  absl::Status pushOptimizerState();
  /// Parameter p's gradient in device memory (the program's output, the
  /// accumulated mean, or zeros).
  const float *deviceGradient(size_t p, bool accumulated) const;
  float *deviceMaster(size_t p) const {
    return static_cast<float *>(deviceMasters_[p] ? deviceMasters_[p]->data()
                                                  : deviceParams_[p]->data());
  }
  /// The program's gradient output of parameter p, in host memory.
  const float *gradientOutput(size_t p) const {
    return mirrored() ? hostGrads_[p].data()
                      : values_[gradOutput_[p]].as<float>();
  }
  bool mirrored() const { return !backend_.sharesHostMemory(); }

  const fb::Model &model_;
  Backend &backend_;
  OptimizerOptions options_;
  comm::Parallelism *parallel_;
  ExpertShare share_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<DeviceBuffer> arena_, ids_, labels_;
  std::vector<std::vector<float>> masters_;
  std::vector<std::vector<uint8_t>> computeCopies_; // empty for fp32 params
  std::vector<std::vector<float>> grads_; // accumulators (micro-batches > 1)
  std::vector<GradientView> gradients_;   // what the last step applied
  std::vector<float> zeros_;
  // Device backends: the parameters on the device, the gradients on the host.
  std::vector<std::unique_ptr<DeviceBuffer>> deviceParams_;
  std::vector<std::vector<float>> hostGrads_;
  // A DeviceOptimizer's state: fp32 masters (null where the parameter is
  // fp32 and deviceParams_ is its master), moments, accumulators, zeros.
  std::vector<std::unique_ptr<DeviceBuffer>> deviceMasters_, deviceAvg_,
      deviceAvgSq_, deviceAccumulators_;
  std::unique_ptr<DeviceBuffer> deviceZeros_;
  bool keepHostGradients_ = false;
  std::vector<AdamState> moments_;
  std::vector<int32_t> gradOutput_; // per parameter: its output, or -1
  std::vector<int32_t> paramOfGradient_; // per value: its parameter, or -1
  std::vector<TensorRef> values_;
  std::vector<KernelLaunch> launches_;
  size_t lossKernels_ = 0; // launches up to the last loss (evaluation)
  int64_t steps_ = 0;
  int64_t updates_ = 0; // steps that updated the weights (AdamW's count)
  int32_t firstNonFiniteGradient_ = -1; // in the order backward wrote them
  int64_t vocab_ = 0;
  profile::Profiler *profiler_ = nullptr;
  int profiledProgram_ = 0;
};

} // namespace moert::train

#endif // MOERT_TRAIN_TRAINER_H
