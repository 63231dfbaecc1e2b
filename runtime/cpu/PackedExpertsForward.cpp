//===- PackedExpertsForward.cpp - the experts phase over packed weights ---===//
//
// The first phase cuts the experts that run GEMMs into (expert, block of
// kRowBlock rows, column chunk) tasks, shared out among the threads as they
// come free, so uneven experts leave no thread idle. A task makes one chunk
// of hidden neurons for its rows: one GEMM over the chunk's gate and up
// columns, then the SwiGLU over that tile while it is in cache.
//
// The second phase runs the down GEMM as (row block, output chunk) tasks
// too. Into a staging buffer (the expert-parallel split's rows) they run
// all at once; into the output they run expert after expert, each adding
// its rows, weighted, straight into the tokens' outputs: a token has one
// row per expert, so one expert's tasks never add into the same row, and
// every token's rows are added in ascending expert order whatever the
// thread count, with no staging copy and no combine pass after. Experts in
// turn keep each expert's weights in cache across its row blocks, as the
// tasks of all experts at once would.
//
// Every task runs its GEMM on its own thread over the same rows, whatever
// the thread count, so the result does not depend on it.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/ExpertStreaming.h"
#include "runtime/cpu/PackedExperts.h"
#include "runtime/cpu/Scratch.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace moert::cpu {
namespace {
struct TaskScratch;
template <typename T, int Slot> T *scratch(size_t count) {
  return threadScratch<T, TaskScratch, Slot>(count);
}

/// One expert's block of rows: grouped rows [firstRow, firstRow + rows).
struct RowBlock {
  int64_t expert, firstRow, rows;
};

/// Runs task(t) for every t in [0, count), dynamically shared among the
/// threads; returns the first error.
template <typename Task>
absl::Status runTasks(int64_t count, const Task &task) {
  std::mutex mutex;
  absl::Status first;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < count; ++t) {
    absl::Status s = task(t);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mutex);
      first.Update(s);
    }
  }
  return first;
}

} // namespace

absl::Status packedExpertsForward(const float *x, const ExpertRouting &routing,
                                  const MoeBlockWeights &block,
                                  ExpertOutputs outputs) {
  const PackedExperts &packed = *block.packed;
  int64_t d = block.d, f = block.f;
  std::vector<RowBlock> blocks;
  for (int64_t e = 0; e < routing.experts; ++e) {
    int64_t n = routing.counts[e];
    if (streamsExpert(block, n))
      continue;
    for (int64_t r = 0; r < n; r += PackedExperts::kRowBlock)
      blocks.push_back({e, routing.first[e] + r,
                        std::min(PackedExperts::kRowBlock, n - r)});
  }

  // Inputs and hidden rows by grouped row.
  bool bf16 = packed.bf16();
  size_t bytes = bf16 ? sizeof(uint16_t) : sizeof(float);
  int64_t rows = routing.first[routing.experts - 1] +
                 routing.counts[routing.experts - 1];
  char *hidden = scratch<char, 1>(rows * f * bytes);
  if (!blocks.empty()) {
    char *inputs = scratch<char, 0>(rows * d * bytes);
    gatherRows(x, d, routing.slots.data(), rows, routing.k,
               bf16 ? nullptr : reinterpret_cast<float *>(inputs),
               bf16 ? reinterpret_cast<uint16_t *>(inputs) : nullptr,
               Threads::kAll);

    auto gateUp = [&](int64_t t) {
      const RowBlock &b = blocks[t / packed.gateUpChunks()];
      int64_t j = t % packed.gateUpChunks(), w = packed.gateUpWidth(j);
      float *tile = scratch<float, 2>(PackedExperts::kRowBlock * 2 *
                                      PackedExperts::kGateUpChunk);
      if (auto s = packed.gateUp(b.expert, j, inputs + b.firstRow * d * bytes,
                                 b.rows, tile);
          !s.ok())
        return s;
      for (int64_t r = 0; r < b.rows; ++r) {
        size_t at = (b.firstRow + r) * f + j * PackedExperts::kGateUpChunk;
        swigluForward(
            tile + r * 2 * w, tile + r * 2 * w + w, w,
            bf16 ? nullptr : reinterpret_cast<float *>(hidden) + at,
            bf16 ? reinterpret_cast<uint16_t *>(hidden) + at : nullptr);
      }
      return absl::OkStatus();
    };
    if (auto s = runTasks(int64_t(blocks.size()) * packed.gateUpChunks(),
                          gateUp);
        !s.ok())
      return s;
  }

  auto down = [&](const RowBlock &b, int64_t j) {
    int64_t w = packed.downWidth(j), column = j * PackedExperts::kDownChunk;
    float *tile =
        scratch<float, 3>(PackedExperts::kRowBlock * PackedExperts::kDownChunk);
    if (auto s = packed.down(b.expert, j, hidden + b.firstRow * f * bytes,
                             b.rows, tile);
        !s.ok())
      return s;
    for (int64_t r = 0; r < b.rows; ++r)
      if (outputs.out)
        addWeightedRow(routing, b.firstRow + r, tile + r * w, column, w, d,
                       outputs.out);
      else
        std::memcpy(outputs.staging + (b.firstRow + r) * d + column,
                    tile + r * w, w * sizeof(float));
    return absl::OkStatus();
  };
  int64_t chunks = packed.downChunks();
  auto runBlocks = [&](size_t begin, size_t end) {
    return runTasks(int64_t(end - begin) * chunks, [&](int64_t t) {
      return down(blocks[begin + t / chunks], t % chunks);
    });
  };
  if (!outputs.out)
    return runBlocks(0, blocks.size());

  forEachRow(routing.tokens, d, Threads::kAll, [&](int64_t t) {
    std::fill_n(outputs.out + t * d, d, 0.0f);
  });
  size_t begin = 0; // the expert's first row block
  for (int64_t e = 0; e < routing.experts; ++e) {
    int64_t first = routing.first[e], n = routing.counts[e];
    if (streamsExpert(block, n)) {
      forEachRow(n, d, Threads::kAll, [&](int64_t r) {
        addWeightedRow(routing, first + r, outputs.staging + (first + r) * d,
                       0, d, d, outputs.out);
      });
      continue;
    }
    size_t end = begin;
    while (end < blocks.size() && blocks[end].expert == e)
      ++end;
    if (auto s = runBlocks(begin, end); !s.ok())
      return s;
    begin = end;
  }
  return absl::OkStatus();
}

} // namespace moert::cpu
