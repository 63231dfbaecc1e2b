//===- ParallelPlan.h - moec plan: EP x DP layouts on a GPU cluster -*- C++ -*-===//
//
// A simple, documented model (docs/parallel.md) of training a model on N
// GPUs with each valid split into expert-parallel and data-parallel
// degrees: memory per GPU, all-to-all bytes per step inside and across
// nodes, and a step time from a GEMM rate and link bandwidths. It reads the
// model's statistics from the IR (ModelStats) and its width from the config.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PARALLELPLAN_H
#define MOEC_PARALLELPLAN_H

#include "passes/ModelStats.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace mlir::moe {

/// The machine: an H100 SXM node unless a topology file says otherwise.
struct Topology {
  int64_t gpusPerNode = 8;
  double nvlinkGBps = 450;     // per GPU and direction
  double internodeGBps = 50;   // 400 Gb/s InfiniBand per GPU
  double gpuMemoryGiB = 80;
  double bf16Tflops = 989;     // dense peak
  double gemmEfficiency = 0.6; // of the peak the GEMMs reach
};

/// Reads a topology JSON file (fields named as Topology's, snake_case);
/// errors name the file and the field.
llvm::Expected<Topology> readTopology(const std::string &path,
                                      Topology defaults);

struct PlanInput {
  ModelStats stats;    // at the sequence length planned
  int64_t hidden = 0;  // model width
  int64_t expertWidth = 0; // an expert's intermediate size
  int64_t gpus = 1;
  int64_t microBatch = 1; // sequences per GPU per micro-batch
  int64_t microBatches = 1; // per GPU and step (gradient accumulation)
  std::string model;      // architecture name, for the header
};

/// One EP x DP split and what the model says of it.
struct Layout {
  int64_t expertParallel = 1, dataParallel = 1;
  double paramsPerGpu = 0;
  double weightBytes = 0, gradientBytes = 0, optimizerBytes = 0,
         shardedOptimizerBytes = 0, activationBytes = 0;
  double allToAllIntraBytes = 0, allToAllInterBytes = 0, allReduceBytes = 0;
  double computeMs = 0, communicationMs = 0;
  double totalBytes() const {
    return weightBytes + gradientBytes + optimizerBytes + activationBytes;
  }
  double totalShardedBytes() const {
    return weightBytes + gradientBytes + shardedOptimizerBytes +
           activationBytes;
  }
  double stepMs() const { return computeMs + communicationMs; }
};

/// Every EP x DP layout of `input.gpus` (EP divides the GPUs and the
/// experts), in ascending EP.
std::vector<Layout> planLayouts(const PlanInput &input,
                                const Topology &topology);

/// Prints the plan's table and the layout it would choose.
void printPlan(const PlanInput &input, const Topology &topology,
               const std::vector<Layout> &layouts, llvm::raw_ostream &os);

} // namespace mlir::moe

#endif // MOEC_PARALLELPLAN_H
