//===- ParallelPlan.cpp - moec plan: EP x DP layouts on a GPU cluster -----===//
//
// The model, per GPU and training step of M micro-batches of T tokens
// (docs/parallel.md says why each term is what it is):
// - memory: bf16 weights, fp32 gradients, fp32 master weights and two AdamW
//   moments (replicated as moec's trainer keeps them, and sharded over the
//   ranks holding copies, as Megatron-Core's distributed optimizer does),
//   activations at 34 D bytes per token and layer (bf16, flash attention;
//   Korthikanti et al. 2022) plus the routed rows of each MoE layer;
// - all-to-all: T k rows per MoE layer, the fraction (EP - 1) / EP of them
//   leaving the GPU under uniform routing, 5 D bf16 values per row and step
//   (input and result forward; input, output gradient and input gradient
//   backward), split into NVLink and InfiniBand traffic by how many of the
//   expert group's peers sit on other nodes;
// - all-reduce: ring all-reduce of fp32 gradients, dense over all GPUs and
//   each expert's over its replicas, at InfiniBand speed once a group spans
//   nodes;
// - compute: 3 x the forward FLOPs per token at the GEMM rate;
// - per step: M times the compute and the all-to-alls, one all-reduce;
// - step time: compute plus communication, nothing overlapped (an upper
//   bound for a runtime that overlaps them).
//
//===----------------------------------------------------------------------===//

#include "compiler/moec/ParallelPlan.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>

namespace mlir::moe {
namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kBf16 = 2, kF32 = 4;

/// Bytes per GPU of a ring all-reduce of `bytes` over `ranks`.
double ringBytes(double bytes, int64_t ranks) {
  return ranks > 1 ? 2.0 * double(ranks - 1) / double(ranks) * bytes : 0.0;
}
} // namespace

llvm::Expected<Topology> readTopology(const std::string &path,
                                      Topology topology) {
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   path + ": " + message);
  };
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      llvm::MemoryBuffer::getFile(path);
  if (!file)
    return fail("cannot read the topology file: " + file.getError().message());
  llvm::Expected<llvm::json::Value> parsed =
      llvm::json::parse((*file)->getBuffer());
  if (!parsed)
    return fail("malformed JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (!object)
    return fail("expected a JSON object");
  struct Field {
    const char *name;
    double *value;
  };
  double gpus = double(topology.gpusPerNode);
  Field fields[] = {{"gpus_per_node", &gpus},
                    {"nvlink_gb_per_s", &topology.nvlinkGBps},
                    {"internode_gb_per_s", &topology.internodeGBps},
                    {"gpu_memory_gib", &topology.gpuMemoryGiB},
                    {"bf16_tflops", &topology.bf16Tflops},
                    {"gemm_efficiency", &topology.gemmEfficiency}};
  for (const auto &[key, value] : *object) {
    auto field = std::find_if(std::begin(fields), std::end(fields),
                              [&](const Field &f) { return key == f.name; });
    if (field == std::end(fields))
      return fail("unknown field '" + key.str() + "'");
    std::optional<double> number = value.getAsNumber();
    if (!number || !(*number > 0) || *number > 1e9)
      return fail("field '" + key.str() + "' must be a positive number");
    *field->value = *number;
  }
  if (gpus != double(int64_t(gpus)))
    return fail("field 'gpus_per_node' must be an integer");
  topology.gpusPerNode = int64_t(gpus);
  if (topology.gemmEfficiency > 1)
    return fail("field 'gemm_efficiency' must be in (0, 1]");
  return topology;
}

std::vector<Layout> planLayouts(const PlanInput &input,
                                const Topology &topology) {
  const ModelStats &s = input.stats;
  double tokens = double(input.microBatch) * double(s.seqLen);
  double experts = double(s.expertParams), dense = double(s.totalParams) - experts;
  double d = double(input.hidden), f = double(input.expertWidth);
  int64_t layers = s.attentionLayers;
  std::vector<Layout> layouts;
  for (int64_t ep = 1; ep <= input.gpus; ++ep) {
    if (input.gpus % ep != 0 || (s.numExperts > 0 && s.numExperts % ep != 0) ||
        (s.numExperts == 0 && ep > 1))
      continue;
    Layout l;
    l.expertParallel = ep;
    l.dataParallel = input.gpus / ep;
    double held = dense + experts / double(ep);
    l.paramsPerGpu = held;
    l.weightBytes = held * kBf16;
    l.gradientBytes = held * kF32;
    l.optimizerBytes = held * 3 * kF32;
    l.shardedOptimizerBytes =
        (dense / double(input.gpus) + experts / double(ep) / double(l.dataParallel)) *
        3 * kF32;
    double routed = double(s.topK) * (2 * d + 3 * f) * kBf16;
    l.activationBytes =
        tokens * (double(layers) * 34 * d + double(s.moeLayers) * routed);

    // All-to-all: rows leaving the GPU, split by where their peers are.
    double rows = tokens * double(s.topK) * double(s.moeLayers) *
                  double(ep - 1) / double(ep);
    double bytes = rows * 5 * d * kBf16;
    int64_t node = topology.gpusPerNode;
    double remote = ep <= node ? 0.0 : double(ep - node) / double(ep - 1);
    l.allToAllInterBytes = bytes * remote;
    l.allToAllIntraBytes = bytes - l.allToAllInterBytes;

    // All-reduce of fp32 gradients: dense over every GPU, experts over their
    // replicas (GPUs ep apart).
    double denseBytes = ringBytes(dense * kF32, input.gpus);
    double expertBytes = ringBytes(experts / double(ep) * kF32, l.dataParallel);
    l.allReduceBytes = denseBytes + expertBytes;
    auto seconds = [&](double b, bool spansNodes) {
      return b / ((spansNodes ? topology.internodeGBps : topology.nvlinkGBps) *
                  1e9);
    };
    double micro = double(input.microBatches);
    l.allToAllIntraBytes *= micro;
    l.allToAllInterBytes *= micro;
    double comm = seconds(l.allToAllIntraBytes, false) +
                  seconds(l.allToAllInterBytes, true) +
                  seconds(denseBytes, input.gpus > node) +
                  seconds(expertBytes, l.dataParallel * ep > node);
    l.communicationMs = comm * 1e3;
    double flops = 3.0 * double(s.flopsPerToken) * tokens * micro;
    l.computeMs =
        flops / (topology.bf16Tflops * 1e12 * topology.gemmEfficiency) * 1e3;
    layouts.push_back(l);
  }
  return layouts;
}

void printPlan(const PlanInput &input, const Topology &topology,
               const std::vector<Layout> &layouts, llvm::raw_ostream &os) {
  const ModelStats &s = input.stats;
  os << llvm::formatv("model: {0}, {1:F2}B parameters ({2:F2}B in {3} experts "
                      "x {4} MoE layers), top-{5}, {6:F2}B active\n",
                      input.model, double(s.totalParams) / 1e9,
                      double(s.expertParams) / 1e9, s.numExperts, s.moeLayers,
                      s.topK, double(s.activeParams) / 1e9);
  os << llvm::formatv("gpus: {0} ({1} per node); per GPU and step {2} "
                      "micro-batch(es) of {3} x {4} tokens (global batch {5} "
                      "sequences)\n",
                      input.gpus, topology.gpusPerNode, input.microBatches,
                      input.microBatch, s.seqLen,
                      input.gpus * input.microBatch * input.microBatches);
  os << llvm::formatv("topology: NVLink {0} GB/s, inter-node {1} GB/s per GPU, "
                      "{2} GiB per GPU, bf16 GEMMs at {3:P0} of {4} TFLOP/s\n",
                      topology.nvlinkGBps, topology.internodeGBps,
                      topology.gpuMemoryGiB, topology.gemmEfficiency,
                      topology.bf16Tflops);
  os << "memory per GPU in GiB (weights bf16, gradients fp32, AdamW state "
        "replicated as moec keeps it | sharded over copies), all-to-all and "
        "all-reduce GB per GPU and step, times in ms\n";
  os << llvm::formatv("{0,-10} {1,8} {2,7} {3,6} {4,7} {5,7} {6,6} {7,7} "
                      "{8,7} {9,6} {10,6} {11,7} {12,8} {13,7} {14,8} {15,6}\n",
                      "layout", "params", "weights", "grads", "adamw", "sharded",
                      "activ", "total", "sharded", "a2a-in", "a2a-x",
                      "allred", "compute", "comm", "step", "TF/s");
  double capacity = topology.gpuMemoryGiB * kGiB;
  const Layout *best = nullptr, *bestSharded = nullptr;
  for (const Layout &l : layouts) {
    double flops = 3.0 * double(s.flopsPerToken) * double(input.microBatch) *
                   double(s.seqLen) * double(input.microBatches);
    os << llvm::formatv(
        "{0,-10} {1,7:F2}B {2,7:F1} {3,6:F1} {4,7:F1} {5,7:F1} {6,6:F1} "
        "{7,7:F1} {8,7:F1} {9,6:F2} {10,6:F2} {11,7:F2} {12,8:F1} {13,7:F1} "
        "{14,8:F1} {15,6:F0}\n",
        llvm::formatv("EP{0}xDP{1}", l.expertParallel, l.dataParallel).str(),
        l.paramsPerGpu / 1e9, l.weightBytes / kGiB, l.gradientBytes / kGiB,
        l.optimizerBytes / kGiB, l.shardedOptimizerBytes / kGiB,
        l.activationBytes / kGiB, l.totalBytes() / kGiB,
        l.totalShardedBytes() / kGiB, l.allToAllIntraBytes / 1e9,
        l.allToAllInterBytes / 1e9, l.allReduceBytes / 1e9, l.computeMs,
        l.communicationMs, l.stepMs(), flops / (l.stepMs() * 1e-3) / 1e12);
    if (l.totalBytes() <= capacity && (!best || l.stepMs() < best->stepMs()))
      best = &l;
    if (l.totalShardedBytes() <= capacity &&
        (!bestSharded || l.stepMs() < bestSharded->stepMs()))
      bestSharded = &l;
  }
  auto name = [](const Layout &l) {
    return llvm::formatv("EP{0} x DP{1}", l.expertParallel, l.dataParallel).str();
  };
  std::string memory = llvm::formatv("{0} GiB", topology.gpuMemoryGiB).str();
  if (best) {
    os << "chosen: " << name(*best) << " (the fastest that fits " << memory
       << " with moec's replicated optimizer state)\n";
  } else if (bestSharded) {
    os << "chosen: " << name(*bestSharded) << " (no layout fits " << memory
       << " with the optimizer state replicated; the fastest that fits with "
          "it sharded over the copies)\n";
  } else if (!layouts.empty()) {
    const Layout *closest = &*std::min_element(
        layouts.begin(), layouts.end(), [](const Layout &a, const Layout &b) {
          return a.totalShardedBytes() < b.totalShardedBytes();
        });
    os << "chosen: none fits " << memory << "; closest " << name(*closest)
       << llvm::formatv(" at {0:F1} GiB with the optimizer state sharded (add "
                        "GPUs, recompute activations or shorten the "
                        "micro-batch)\n",
                        closest->totalShardedBytes() / kGiB);
  }
}

} // namespace mlir::moe
