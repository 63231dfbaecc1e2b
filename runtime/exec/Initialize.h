//===- Initialize.h - run an artifact's initialisation program --*- C++ -*-===//

#ifndef MOERT_EXEC_INITIALIZE_H
#define MOERT_EXEC_INITIALIZE_H

#include "runtime/artifact/Artifact.h"
#include "runtime/checkpoint/HfCheckpoint.h"
#include "runtime/checkpoint/WeightShards.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Weights.h"

#include <functional>

namespace moert {

/// Receives each parameter the program derives: its index and its values in
/// fp32 (host memory, valid during the call).
using ParamSink =
    std::function<absl::Status(size_t param, const float *values, int64_t count)>;

/// Runs the `initialize` program of `artifact` on `backend`, reading its
/// source tensors from `source` (widened to fp32 just before their first use
/// and released after their last, so memory stays near the program's arena)
/// and handing every derived parameter to `sink` as it is written.
/// On a rank of an expert-parallel run (`share`), only the kernels that
/// derive this rank's experts run.
absl::Status runInitialization(const Artifact &artifact,
                               const HfCheckpoint &source, Backend &backend,
                               const ParamSink &sink, ExpertShare share = {});

/// The same, storing the derived parameters into `weights` (bound with
/// Weights::forInitialization) in their own dtypes.
absl::Status runInitialization(const Artifact &artifact, Weights &weights,
                               Backend &backend, ExpertShare share = {});

/// Derives an upcycled model's weights from the dense checkpoint `denseDir`
/// and writes them as a Hugging Face checkpoint directory `outDir`
/// (config.json + safetensors in shards of at most `maxShardBytes`, experts
/// unstacked) one tensor at a time: peak memory is near the program's arena
/// plus one tensor, whatever the model's size. Written to a temporary
/// directory and renamed.
absl::Status writeUpcycledCheckpoint(
    const Artifact &artifact, const std::string &denseDir,
    const std::string &outDir, Backend &backend,
    uint64_t maxShardBytes = kDefaultMaxShardBytes);

} // namespace moert

#endif // MOERT_EXEC_INITIALIZE_H
