//===- ProfilerTest.cpp - kernel costs, traces and the summary ------------===//
//
// Runs the hand-built artifact (embedding -> linear head) under a profiler
// and checks the costs against the shapes, the trace's events against the
// steps and the summary's arithmetic against injected ceilings.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Executor.h"
#include "runtime/profile/Ceilings.h"
#include "runtime/profile/ProfileSummary.h"
#include "tests/runtime/HandBuiltArtifact.h"
#include "tests/runtime/TestDirs.h"

#include <gtest/gtest.h>

using namespace moert;
using namespace moert::testing;

namespace {

class ProfiledRunTest : public HandBuiltExecutorTest {};

TEST_F(ProfiledRunTest, CostsTraceAndSummary) {

  profile::TraceOptions window{true, 2, 3};
  profile::Profiler profiler(window);
  executor->setProfiler(&profiler);
  std::vector<int32_t> tokens = {0, 1, 2, 3, 4, 1};
  std::vector<float> logits;
  for (int step = 1; step <= 4; ++step) {
    profiler.beginStep(step);
    profile::Profiler::Scope scope(&profiler, "forward", "step");
    ASSERT_TRUE(executor->forward(tokens, logits).ok());
  }

  const profile::ProgramProfile &program = profiler.programs().at(0);
  ASSERT_EQ(program.sites.size(), 2u);
  const profile::KernelCost &embedding = program.sites[0].cost;
  const profile::KernelCost &head = program.sites[1].cost;
  EXPECT_FALSE(embedding.products);
  EXPECT_EQ(embedding.flops, 0);
  // Ids (6 x 4 B), the gathered rows read and written (2 x 24 floats).
  EXPECT_EQ(embedding.bytes, 6 * 4 + 2 * 24 * 4);
  EXPECT_TRUE(head.products);
  EXPECT_EQ(head.flops, 2.0 * kBatch * kSeq * kWidth * kVocab);
  EXPECT_EQ(head.bytes, 4.0 * (kBatch * kSeq * kWidth + kVocab * kWidth +
                               kBatch * kSeq * kVocab));
  // The op is what the location names first; it holds no model name.
  EXPECT_EQ(program.sites[1].name, "test");
  EXPECT_EQ(program.sites[1].location, "test location");
  EXPECT_EQ(program.millis[0].size(), 4u);

  // Steps 2 and 3 traced: two kernels and one step event each.
  nlohmann::json trace = profiler.trace();
  int kernels = 0, steps = 0;
  for (const nlohmann::json &event : trace["traceEvents"]) {
    if (event["ph"] != "X")
      continue;
    EXPECT_GE(event["args"]["step"].get<int64_t>(), 2);
    EXPECT_LE(event["args"]["step"].get<int64_t>(), 3);
    kernels += event["cat"] == "kernel";
    steps += event["cat"] == "step";
  }
  EXPECT_EQ(kernels, 4);
  EXPECT_EQ(steps, 2);

  // Ridge at 100 / 10 = 10 FLOP/byte: both kernels are memory-bound here.
  profile::Ceilings ceilings{100, 200, 10, 1};
  nlohmann::json summary = profile::summarize(profiler, ceilings, "injected");
  EXPECT_EQ(summary["steps"], 4);
  ASSERT_EQ(summary["by_op"].size(), 1u); // both kernels are "test" ops
  for (const nlohmann::json &row : summary["by_op"]) {
    EXPECT_EQ(row["calls"], 8);
    EXPECT_EQ(row["bound"], "memory");
    EXPECT_DOUBLE_EQ(row["percent_of_ceiling"].get<double>(),
                     10 * row["gb_per_s"].get<double>());
  }
  EXPECT_DOUBLE_EQ(summary["step"]["useful_flops_per_step"].get<double>(),
                   head.flops);
}

TEST(ProfilerTest, StepWindows) {
  profile::TraceOptions options;
  EXPECT_TRUE(profile::parseStepWindow("5:", options).ok());
  EXPECT_EQ(options.firstStep, 5);
  EXPECT_TRUE(profile::parseStepWindow(":7", options).ok());
  EXPECT_EQ(options.lastStep, 7);
  for (const char *bad : {"", "3", "0:2", "4:3", "a:b", "1:2:3", "-1:"})
    EXPECT_FALSE(profile::parseStepWindow(bad, options).ok()) << bad;
}

class CeilingsTest : public ScratchDirTest {};

TEST_F(CeilingsTest, RoundTripAndRefusals) {
  std::string path = dir + "/cache/moec/ceilings.json";
  profile::Ceilings written{123.5, 456.25, 33.0, 30.5, 2};
  ASSERT_TRUE(profile::writeCeilings(path, written).ok());
  absl::StatusOr<profile::Ceilings> read = profile::readCeilings(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->gemmGflopsBf16, 456.25);
  EXPECT_EQ(read->readBandwidthGbs, 30.5);
  EXPECT_EQ(read->threads, 2);
  for (const char *bad :
       {"[1]", "{\"gemm_gflops_f32\": 1}", "{", "",
        "{\"gemm_gflops_f32\": 1, \"gemm_gflops_bf16\": 1, "
        "\"bandwidth_gb_per_s\": -1, \"threads\": 1}"}) {
    writeBytes(path, bad);
    absl::StatusOr<profile::Ceilings> refused = profile::readCeilings(path);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(std::string(refused.status().message()).find(path),
              std::string::npos);
  }
}

} // namespace
