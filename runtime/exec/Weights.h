//===- Weights.h - a model's parameters, loaded or initialised --*- C++ -*-===//

#ifndef MOERT_EXEC_WEIGHTS_H
#define MOERT_EXEC_WEIGHTS_H

#include "runtime/artifact/Artifact.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/WeightShards.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/comm/Parallelism.h"

#include "absl/status/statusor.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace moert {

/// The experts one rank of an expert-parallel run holds: share `index` of
/// `shares` of every stacked parameter, whose declared first dimension is
/// one share. One process holds the only share.
struct ExpertShare {
  int64_t index = 0, shares = 1;
  /// Rank `rank`'s share of an artifact's experts.
  static ExpertShare ofRank(const fb::Model &model, int rank) {
    int64_t shares = std::max(model.expert_parallel(), 1);
    return {rank % shares, shares};
  }
};

/// Host memory for every parameter of an artifact, in the artifact's dtypes.
/// A parameter whose checkpoint tensor already has the right dtype and
/// layout points into the memory-mapped checkpoint (no copy).
class Weights {
public:
  /// Binds the parameters to the tensors of a Hugging Face checkpoint
  /// directory: names must match exactly (a `*` in a parameter name gathers
  /// the per-expert tensors 0..E-1), shapes must agree, F32/BF16/F16 convert
  /// to the parameter's dtype. Missing, extra or mis-shaped tensors are
  /// errors naming the tensor. With a `share`, a stacked parameter binds
  /// only that share's experts (the others' tensors are left to their
  /// ranks).
  static absl::StatusOr<Weights> fromCheckpoint(const fb::Model &model,
                                                const std::string &dir,
                                                ExpertShare share = {});
  /// For an artifact with an initialisation program (an upcycled model):
  /// binds the parameters that `dir` (the dense source checkpoint) holds by
  /// name, keeps the checkpoint for the program's source tensors, and
  /// reserves writable memory for the parameters the program derives. Every
  /// checkpoint tensor must be a parameter or a source.
  static absl::StatusOr<Weights> forInitialization(const fb::Model &model,
                                                   const std::string &dir);
  /// Draws every parameter from its initialiser, reproducibly from `seed`
  /// (counter-based: independent of thread count; each expert of a stacked
  /// parameter is keyed by its own checkpoint name, so a share draws
  /// exactly what one process draws for those experts).
  static absl::StatusOr<Weights> initialise(const fb::Model &model,
                                            uint64_t seed,
                                            ExpertShare share = {});

  /// The bytes of parameter `index`, laid out as the artifact says.
  const void *data(size_t index) const { return pointers_[index]; }
  /// Writable memory of a parameter the weights own (null for one used in
  /// place from a checkpoint).
  void *mutableData(size_t index) {
    return owner_[index] < 0 ? nullptr : owned_[owner_[index]].data();
  }
  /// The checkpoint the weights were bound from, if any.
  const HfCheckpoint *checkpoint() const { return checkpoint_.get(); }
  size_t size() const { return pointers_.size(); }

  /// Writes a Hugging Face checkpoint directory (config.json from the
  /// artifact, safetensors in shards of at most `maxShardBytes` with
  /// per-expert tensors unstacked), atomically: into DIR.tmp-PID, then
  /// renamed. With `parallel` (the weights being one rank's share), the
  /// experts are gathered from the first expert group and rank 0 writes the
  /// one directory a single process would.
  absl::Status save(const fb::Model &model, const std::string &dir,
                    uint64_t maxShardBytes = kDefaultMaxShardBytes,
                    comm::Parallelism *parallel = nullptr) const;

private:
  static absl::StatusOr<Weights> load(const fb::Model &model,
                                      const std::string &dir, bool derive,
                                      ExpertShare share);
  void own(std::vector<uint8_t> storage);
  static absl::StatusOr<Weights> draw(const fb::Model &model, uint64_t seed,
                                      ExpertShare share);

  std::vector<const void *> pointers_;
  std::vector<std::vector<uint8_t>> owned_;
  std::vector<int64_t> owner_; // per parameter: index in owned_, or -1
  std::shared_ptr<HfCheckpoint> checkpoint_; // keeps mapped memory alive
};

/// The tensors of a Hugging Face checkpoint holding `params` (one pointer
/// per parameter, laid out as the artifact says): stacked experts unstacked
/// into their per-expert names. `shares` > 1: the stacked parameters hold
/// all shares of an expert-parallel artifact (gathered from its ranks).
std::vector<TensorToWrite> checkpointTensors(const fb::Model &model,
                                             const std::vector<const void *> &params,
                                             int64_t shares = 1);

/// Makes `params` (one pointer per parameter, this rank's share of the
/// stacked ones, each element `elementBytes` or the parameter's dtype size
/// when 0) point at whole parameters on world rank 0 of an expert-parallel
/// run: the stacked ones are gathered from the first expert group into
/// `storage`. Every rank of that group must call it; nothing changes for one
/// process. Returns how many shares the stacked parameters now hold (1 on
/// ranks other than 0, whose pointers are left as they were).
absl::StatusOr<int64_t> gatherWholeParams(const fb::Model &model,
                                          comm::Parallelism *parallel,
                                          std::vector<const void *> &params,
                                          size_t elementBytes,
                                          std::vector<std::vector<uint8_t>> &storage);

/// Whether `param` stacks experts (its name holds the `*` of their index);
/// on a rank of an expert-parallel run it holds that rank's share.
bool isStacked(const fb::Param &param);

/// The checkpoint name of expert `expert` of a stacked parameter name.
std::string expertName(const std::string &stackedName, int64_t expert);

} // namespace moert

#endif // MOERT_EXEC_WEIGHTS_H
