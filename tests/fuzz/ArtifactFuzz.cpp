//===- ArtifactFuzz.cpp - the .moex verifier and loader -------------------===//
//
// A .moex through Artifact::load (the FlatBuffers verifier and moec's own
// checks), then, for artifacts small enough to allocate, weights drawn from
// its initialisers and an Executor created on the CPU backend: every launch
// of the schedule prepared and checked.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/Weights.h"
#include "tests/fuzz/FuzzInput.h"

namespace {
/// Artifacts planning more memory than this are loaded but not prepared:
/// refusing them is the allocator's job, not the loader's.
constexpr uint64_t kMaxPreparedBytes = uint64_t(64) << 20;

bool smallEnough(const moert::fb::Model &model) {
  uint64_t bytes = model.arena_bytes();
  if (model.params())
    for (const auto *param : *model.params()) {
      uint64_t elements = 1;
      if (param->shape())
        for (int64_t extent : *param->shape()) {
          if (extent < 0 || (extent > 0 && elements > kMaxPreparedBytes / extent))
            return false;
          elements *= uint64_t(extent);
        }
      bytes += elements * 4;
      if (bytes > kMaxPreparedBytes)
        return false;
    }
  return bytes <= kMaxPreparedBytes;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = moec::fuzz::writeInput("input.moex", data, size);
  absl::StatusOr<moert::Artifact> artifact = moert::Artifact::load(path);
  if (!artifact.ok() || !smallEnough(artifact->model()))
    return 0;
  absl::StatusOr<moert::Weights> weights =
      moert::Weights::initialise(artifact->model(), 1);
  if (!weights.ok())
    return 0;
  std::unique_ptr<moert::Backend> backend = moert::createCpuBackend();
  absl::StatusOr<std::unique_ptr<moert::Executor>> executor =
      moert::Executor::create(*artifact, *weights, *backend);
  (void)executor;
  return 0;
}
