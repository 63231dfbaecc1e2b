//===- HandBuiltArtifact.h - a small artifact built by hand -----*- C++ -*-===//
//
// Embedding -> linear head over a [kBatch, kSeq] batch, with knobs that
// damage it, for the tests of the loader, the executor and the profiler.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TESTS_RUNTIME_HANDBUILTARTIFACT_H
#define MOERT_TESTS_RUNTIME_HANDBUILTARTIFACT_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/exec/Executor.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace moert::testing {

inline constexpr int64_t kBatch = 2, kSeq = 3, kVocab = 5, kWidth = 4;

struct ArtifactOptions {
  uint32_t version = kFormatVersion;
  int64_t logitsOffset = 128; // after the 2*3*4 floats (96 bytes) of the embedding
  int32_t headValue = 2;     // value id of the head weight
  int64_t unusedValues = 0;  // more arena values, which no kernel reads
};

inline std::vector<uint8_t> buildArtifact(const ArtifactOptions &options = {}) {
  flatbuffers::FlatBufferBuilder b;
  auto param = [&](const char *name, std::vector<int64_t> shape) {
    return fb::CreateParam(b, b.CreateString(name), fb::DType::F32,
                           b.CreateVector(shape),
                           fb::CreateInit(b, fb::InitKind::Normal, 0.0, 1.0, 0.0));
  };
  std::vector<flatbuffers::Offset<fb::Param>> params = {
      param("embed", {kVocab, kWidth}), param("head", {kVocab, kWidth})};
  auto value = [&](fb::ValueKind kind, fb::DType dtype, std::vector<int64_t> shape,
                   int32_t index, int64_t offset, int64_t bytes) {
    return fb::CreateValue(b, kind, dtype, b.CreateVector(shape), index, offset,
                           bytes);
  };
  int64_t hiddenBytes = kBatch * kSeq * kWidth * 4, logitsBytes = kBatch * kSeq * kVocab * 4;
  std::vector<flatbuffers::Offset<fb::Value>> values = {
      value(fb::ValueKind::Input, fb::DType::I32, {kBatch, kSeq}, 0, 0, 0),
      value(fb::ValueKind::Param, fb::DType::F32, {kVocab, kWidth}, 0, 0, 0),
      value(fb::ValueKind::Param, fb::DType::F32, {kVocab, kWidth}, 1, 0, 0),
      value(fb::ValueKind::Arena, fb::DType::F32, {kBatch, kSeq, kWidth}, 0, 0,
            hiddenBytes),
      value(fb::ValueKind::Arena, fb::DType::F32, {kBatch, kSeq, kVocab}, 0,
            options.logitsOffset, logitsBytes)};
  for (int64_t i = 0; i < options.unusedValues; ++i)
    values.push_back(value(fb::ValueKind::Arena, fb::DType::F32, {1}, 0, 0, 4));
  auto kernel = [&](fb::OpKind op, std::vector<int32_t> operands, int32_t result) {
    return fb::CreateKernel(b, op, b.CreateString("test"), b.CreateVector(operands),
                            b.CreateVector(std::vector<int32_t>{result}), 0, 0,
                            b.CreateString("test location"));
  };
  std::vector<flatbuffers::Offset<fb::Kernel>> kernels = {
      kernel(fb::OpKind::Embedding, {1, 0}, 3),
      kernel(fb::OpKind::Linear, {3, options.headValue}, 4)};
  auto program = fb::CreateProgram(b, b.CreateString("forward"),
                                   b.CreateVector(std::vector<int32_t>{0}),
                                   b.CreateVector(std::vector<int32_t>{4}),
                                   b.CreateVector(kernels));
  auto model = fb::CreateModel(b, options.version, b.CreateString("test"), kBatch,
                               kSeq, b.CreateString("{}"), b.CreateVector(params),
                               b.CreateVector(values), 128 + logitsBytes, program);
  fb::FinishModelBuffer(b, model);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

/// The hand-built artifact with weights drawn from seed 3, bound to an
/// executor on the CPU backend.
class HandBuiltExecutorTest : public ::testing::Test {
protected:
  void SetUp() override {
    absl::StatusOr<Artifact> loaded = Artifact::fromBytes(buildArtifact(), "m.moex");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    artifact.emplace(std::move(*loaded));
    absl::StatusOr<Weights> drawn = Weights::initialise(artifact->model(), 3);
    ASSERT_TRUE(drawn.ok()) << drawn.status();
    weights.emplace(std::move(*drawn));
    auto created = Executor::create(*artifact, *weights, *cpu);
    ASSERT_TRUE(created.ok()) << created.status();
    executor = std::move(*created);
  }

  std::optional<Artifact> artifact;
  std::optional<Weights> weights;
  std::unique_ptr<Backend> cpu = createCpuBackend();
  std::unique_ptr<Executor> executor;
};

} // namespace moert::testing

#endif // MOERT_TESTS_RUNTIME_HANDBUILTARTIFACT_H
