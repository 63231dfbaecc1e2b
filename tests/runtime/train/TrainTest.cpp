//===- TrainTest.cpp - the optimiser, the schedule and batch sources ------===//
//
// The whole trainer is checked against PyTorch in tests/e2e; these pin the
// pieces to their definitions on hand-computed values.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"
#include "runtime/train/AdamW.h"
#include "runtime/train/TrainData.h"
#include "runtime/train/Trainer.h"

#include "tests/runtime/HandBuiltArtifact.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

namespace moert::train {
namespace {

TEST(ScheduleTest, WarmsUpLinearlyThenDecaysByCosineToTheFloor) {
  OptimizerOptions o;
  o.lr = 1.0, o.minLr = 0.1, o.warmupSteps = 4, o.totalSteps = 14;
  EXPECT_DOUBLE_EQ(learningRate(o, 0), 0.25);
  EXPECT_DOUBLE_EQ(learningRate(o, 3), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(o, 4), 1.0);              // cosine starts at lr
  EXPECT_NEAR(learningRate(o, 9), 0.55, 1e-12);            // halfway
  EXPECT_NEAR(learningRate(o, 13), 0.1 + 0.45 * (1 + std::cos(M_PI * 0.9)), 1e-12);
  EXPECT_DOUBLE_EQ(learningRate(o, 20), 0.1);              // past the end: the floor
}

TEST(ScheduleTest, ConstantWithoutWarmupAndWithMinEqualToLr) {
  OptimizerOptions o;
  o.lr = o.minLr = 3e-4, o.warmupSteps = 0, o.totalSteps = 7;
  for (int64_t s = 0; s < 7; ++s)
    EXPECT_DOUBLE_EQ(learningRate(o, s), 3e-4);
}

TEST(AdamWTest, MatchesTheTorchFormulaForTwoSteps) {
  OptimizerOptions o;
  o.weightDecay = 0.1;
  float master[2] = {1.0f, -2.0f};
  float grads[2][2] = {{0.5f, -0.25f}, {-1.0f, 0.75f}};
  double p[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  AdamState state;
  double lr = 0.01, scale = 0.5;
  for (int step = 1; step <= 2; ++step) {
    adamwUpdate(master, grads[step - 1], state, 2, /*decay=*/true, lr, step,
                scale, o);
    for (int i = 0; i < 2; ++i) {
      double g = grads[step - 1][i] * scale;
      p[i] *= 1 - lr * o.weightDecay;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.95 * v[i] + 0.05 * g * g;
      double mHat = m[i] / (1 - std::pow(0.9, step));
      double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.95, step)) + 1e-8;
      p[i] -= lr * mHat / denom;
      EXPECT_NEAR(master[i], p[i], 1e-6) << "step " << step << " element " << i;
    }
  }
}

TEST(AdamWTest, NormWeightsAreNotDecayed) {
  OptimizerOptions o;
  o.weightDecay = 0.5;
  float master[1] = {2.0f}, grad[1] = {0.0f};
  AdamState state;
  adamwUpdate(master, grad, state, 1, /*decay=*/false, 0.1, 1, 1.0, o);
  EXPECT_FLOAT_EQ(master[0], 2.0f);
  adamwUpdate(master, grad, state, 1, /*decay=*/true, 0.1, 2, 1.0, o);
  EXPECT_FLOAT_EQ(master[0], 2.0f * (1 - 0.1 * 0.5));
}

TEST(AdamWTest, GlobalNormSpansEveryTensor) {
  float a[] = {3.0f}, b[] = {4.0f, 0.0f};
  EXPECT_DOUBLE_EQ(globalNorm({{a, 1}, {b, 2}}), 5.0);
}

TEST(AdamWTest, SumOfSquaresIsExactEnoughAndThreadIndependent) {
  // Long enough for several chunks and an uneven tail.
  std::vector<float> values(100003);
  double reference = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = float(std::sin(double(i))) * (1.0f + float(i % 7));
    reference += double(values[i]) * values[i];
  }
  GradientView view{values.data(), int64_t(values.size())};
  double one, two;
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  one = sumOfSquares(view);
  omp_set_num_threads(2);
  two = sumOfSquares(view);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
  EXPECT_NEAR(one, reference, 1e-6 * reference);
  // The trainer adds per-tensor sums in parameter order, as globalNorm.
  EXPECT_EQ(globalNorm({view, view}), std::sqrt(one + one));
}

std::string writeText(const std::string &name, const std::string &text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(BatchSourceTest, TextLinesShiftLabelsPadAndCycle) {
  std::string path = writeText("lines.txt", "1 2 3\n\n4 5 6 7 8\n9 10\n");
  auto source = openBatchSource(path, /*batch=*/2, /*seq=*/4, /*vocab=*/16, 0, true);
  ASSERT_TRUE(source.ok()) << source.status();
  Batch first = (*source)->next();
  EXPECT_EQ(first.ids, (std::vector<int32_t>{1, 2, 0, 0, 4, 5, 6, 7}));
  EXPECT_EQ(first.labels, (std::vector<int32_t>{2, 3, -100, -100, 5, 6, 7, 8}));
  nlohmann::json state = (*source)->state();
  Batch second = (*source)->next(); // line 3, then around to line 1
  EXPECT_EQ(second.ids, (std::vector<int32_t>{9, 0, 0, 0, 1, 2, 0, 0}));
  ASSERT_TRUE((*source)->restore(state).ok());
  EXPECT_EQ((*source)->next().ids, second.ids);
}

TEST(BatchSourceTest, BadTextIsRefusedByLine) {
  auto tooLong = openBatchSource(writeText("long.txt", "1 2\n1 2 3 4 5 6\n"), 1, 4, 16, 0, true);
  ASSERT_FALSE(tooLong.ok());
  EXPECT_NE(std::string(tooLong.status().message()).find("long.txt:2:"), std::string::npos);
  auto outOfVocab = openBatchSource(writeText("vocab.txt", "1 16\n"), 1, 4, 16, 0, true);
  ASSERT_FALSE(outOfVocab.ok());
  EXPECT_NE(std::string(outOfVocab.status().message()).find("token '16'"), std::string::npos);
  auto empty = openBatchSource(writeText("empty.txt", "\n\n"), 1, 4, 16, 0, true);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(std::string(empty.status().message()).find("no sequences"), std::string::npos);
}

/// A training artifact of one parameter [2] whose programs compute nothing:
/// enough to pass the loader's checks.
std::vector<uint8_t> buildTrainingArtifact() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Param>> params = {fb::CreateParam(
      b, b.CreateString("w"), fb::DType::F32,
      b.CreateVector(std::vector<int64_t>{2}),
      fb::CreateInit(b, fb::InitKind::Constant, 0.0, 0.0, 1.0))};
  auto value = [&](fb::ValueKind kind, fb::DType dtype,
                   std::vector<int64_t> shape, int32_t index, int64_t offset,
                   int64_t bytes) {
    return fb::CreateValue(b, kind, dtype, b.CreateVector(shape), index,
                           offset, bytes);
  };
  // ids, labels, the three scalar losses (which the forward program
  // returns too), the parameter.
  std::vector<flatbuffers::Offset<fb::Value>> values = {
      value(fb::ValueKind::Input, fb::DType::I32, {1, 1}, 0, 0, 0),
      value(fb::ValueKind::Input, fb::DType::I32, {1, 1}, 1, 0, 0),
      value(fb::ValueKind::Arena, fb::DType::F32, {}, 0, 0, 4),
      value(fb::ValueKind::Arena, fb::DType::F32, {}, 0, 64, 4),
      value(fb::ValueKind::Arena, fb::DType::F32, {}, 0, 128, 4),
      value(fb::ValueKind::Param, fb::DType::F32, {2}, 0, 0, 0)};
  auto program = [&](const char *name, std::vector<int32_t> inputs,
                     std::vector<int32_t> outputs) {
    return fb::CreateProgram(
        b, b.CreateString(name), b.CreateVector(inputs),
        b.CreateVector(outputs),
        b.CreateVector(std::vector<flatbuffers::Offset<fb::Kernel>>{}));
  };
  auto forward = program("forward", {0}, {2});
  auto training = fb::CreateTraining(
      b, program("train_step", {0, 1}, {2, 3, 4}),
      b.CreateVector(std::vector<int32_t>{}));
  auto model = fb::CreateModel(
      b, kFormatVersion, b.CreateString("test"), 1, 1, b.CreateString("{}"),
      b.CreateVector(params), b.CreateVector(values), 192, forward,
      /*initialize=*/0, /*sources=*/0, training);
  fb::FinishModelBuffer(b, model);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// The tools always bind weights drawn or loaded for the artifact itself; a
// caller that passes another model's weights is refused by name.
TEST(TrainerTest, RefusesWeightsOfAnotherArtifact) {
  absl::StatusOr<Artifact> artifact =
      Artifact::fromBytes(buildTrainingArtifact(), "t.moex");
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  absl::StatusOr<Artifact> other =
      Artifact::fromBytes(moert::testing::buildArtifact(), "m.moex");
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<Weights> weights = Weights::initialise(other->model(), 3);
  ASSERT_TRUE(weights.ok()) << weights.status();
  std::unique_ptr<Backend> cpu = createCpuBackend();
  auto trainer = Trainer::create(*artifact, *weights, *cpu, OptimizerOptions());
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().message(),
            "t.moex: the weights hold 2 parameters but the artifact declares 1");
}

} // namespace
} // namespace moert::train
