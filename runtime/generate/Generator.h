//===- Generator.h - run the prefill and decode programs --------*- C++ -*-===//
//
// Binds a generation artifact (moec compile --mode generate) once: weights,
// the activation arena, the inputs and the key/value caches, which keep
// their rows from one program run to the next. Prompts go in by prefill
// runs of the compiled row count each; tokens then go in one per sequence
// per decode step. Positions say where each row goes: the caller (and
// nothing in the caches) keeps track of each sequence's length.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_GENERATE_GENERATOR_H
#define MOERT_GENERATE_GENERATOR_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Weights.h"
#include "runtime/profile/Profiler.h"

#include "absl/status/statusor.h"

#include <memory>
#include <vector>

namespace moert {

class Generator {
public:
  static absl::StatusOr<std::unique_ptr<Generator>>
  create(const Artifact &artifact, const Weights &weights, Backend &backend);

  /// Writes prompts[b] (1 .. capacity() ids each, at most batch() prompts)
  /// into the caches at positions 0.. and sets logits [batch, vocab] to the
  /// logits after each prompt's last token (rows past the prompts: zero).
  absl::Status prefill(const std::vector<std::vector<int32_t>> &prompts,
                       std::vector<float> &logits);

  /// One token per sequence: tokens[b] at positions[b] (below capacity();
  /// negative: the sequence takes no part), after the rows 0 .. position-1
  /// already cached. Sets logits [batch, vocab].
  absl::Status decode(const std::vector<int32_t> &tokens,
                      const std::vector<int32_t> &positions,
                      std::vector<float> &logits);

  /// Reports every kernel to `profiler` from now on; null stops it.
  void setProfiler(profile::Profiler *profiler);

  int64_t batch() const { return model_.batch(); }
  int64_t capacity() const { return model_.seq(); }
  int64_t prefillRows() const { return prefillRows_; }
  int64_t vocab() const { return vocab_; }
  int64_t cacheBytes() const { return model_.generation()->cache_bytes(); }

private:
  struct Program {
    const fb::Program *program = nullptr;
    std::vector<KernelLaunch> launches;
    int profiled = 0;
  };

  Generator(const fb::Model &model, Backend &backend)
      : model_(model), backend_(backend) {}
  absl::Status bind(const Weights &weights);
  /// Copies `inputs` (one int32 array per program input) in, runs the
  /// program and copies its logits [batch, vocab] out.
  absl::Status run(Program &program,
                   const std::vector<const std::vector<int32_t> *> &inputs,
                   std::vector<float> &logits);

  const fb::Model &model_;
  Backend &backend_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<DeviceBuffer> arena_, caches_;
  std::vector<std::unique_ptr<DeviceBuffer>> inputs_, uploadedParams_;
  std::vector<TensorRef> values_;
  Program prefill_, decode_;
  int64_t prefillRows_ = 0, vocab_ = 0;
  profile::Profiler *profiler_ = nullptr;
};

} // namespace moert

#endif // MOERT_GENERATE_GENERATOR_H
