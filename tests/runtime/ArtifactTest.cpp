//===- ArtifactTest.cpp - artifact verification and execution -------------===//
//
// Builds a small artifact by hand (embedding -> linear head), runs it, and
// damages it in every way the loader must refuse.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/exec/Executor.h"
#include "tests/runtime/HandBuiltArtifact.h"

#include <gtest/gtest.h>

using namespace moert;
using namespace moert::testing;

namespace {
std::string errorOf(std::vector<uint8_t> bytes) {
  absl::StatusOr<Artifact> artifact = Artifact::fromBytes(std::move(bytes), "m.moex");
  EXPECT_FALSE(artifact.ok());
  return artifact.ok() ? "" : std::string(artifact.status().message());
}

class ArtifactRunTest : public HandBuiltExecutorTest {};

TEST_F(ArtifactRunTest, RunsAHandBuiltModel) {
  std::vector<int32_t> tokens = {0, 1, 2, 3, 4, 1};
  std::vector<float> logits;
  ASSERT_TRUE(executor->forward(tokens, logits).ok());
  const float *embed = static_cast<const float *>(weights->data(0));
  const float *head = static_cast<const float *>(weights->data(1));
  for (int64_t t = 0; t < kBatch * kSeq; ++t)
    for (int64_t v = 0; v < kVocab; ++v) {
      double expected = 0;
      for (int64_t i = 0; i < kWidth; ++i)
        expected += double(embed[tokens[t] * kWidth + i]) * head[v * kWidth + i];
      EXPECT_NEAR(logits[t * kVocab + v], expected, 1e-5);
    }
  // Out-of-vocabulary ids are an error, not a read out of bounds.
  tokens[5] = kVocab;
  absl::Status status = executor->forward(tokens, logits);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("outside the vocabulary"),
            std::string::npos);
}

// FlatBuffers' verifier refuses more than 10^6 tables by default, which an
// upcycling program of tens of thousands of experts has: the loader bounds
// them by the file's size instead.
TEST(ArtifactTest, LoadsMoreThanAMillionTables) {
  absl::StatusOr<Artifact> artifact = Artifact::fromBytes(
      buildArtifact({.unusedValues = 1'100'000}), "m.moex");
  EXPECT_TRUE(artifact.ok()) << artifact.status();
}

TEST(ArtifactTest, RefusesDamagedArtifacts) {
  std::vector<uint8_t> good = buildArtifact();
  EXPECT_NE(errorOf({1, 2, 3}).find("not a .moex artifact"), std::string::npos);
  std::vector<uint8_t> truncated(good.begin(), good.begin() + good.size() / 2);
  EXPECT_NE(errorOf(truncated).find("m.moex"), std::string::npos);
  std::vector<uint8_t> renamed = good;
  renamed[4] = 'X'; // the file identifier
  EXPECT_NE(errorOf(renamed).find("MOEX identifier"), std::string::npos);
  EXPECT_NE(errorOf(buildArtifact({.version = 99})).find("format version 99"),
            std::string::npos);
  EXPECT_NE(errorOf(buildArtifact({.logitsOffset = 1 << 20}))
                .find("does not fit its shape in the arena"),
            std::string::npos);
  EXPECT_NE(errorOf(buildArtifact({.headValue = 17})).find("names value #17"),
            std::string::npos);
  // Every single-byte corruption is refused or loads into something that
  // still passes verification; none may crash (run under ASan in CI).
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> flipped = good;
    flipped[i] ^= 0x5a;
    absl::StatusOr<Artifact> artifact = Artifact::fromBytes(flipped, "m.moex");
    if (!artifact.ok())
      continue;
    int64_t elements = 0; // keep the test quick: skip multi-GB "models"
    for (const fb::Param *param : *artifact->model().params())
      elements += numElements(*param->shape());
    if (elements > (1 << 20) || artifact->model().arena_bytes() > (1 << 24))
      continue;
    absl::StatusOr<Weights> weights = Weights::initialise(artifact->model(), 0);
    if (!weights.ok())
      continue;
    std::unique_ptr<Backend> cpu = createCpuBackend();
    auto executor = Executor::create(*artifact, *weights, *cpu);
    if (!executor.ok())
      continue;
    std::vector<int32_t> tokens((*executor)->batch() * (*executor)->seq(), 0);
    std::vector<float> logits;
    (void)(*executor)->forward(tokens, logits);
  }
}
} // namespace
