//===- PackedExpertsForward.cpp - the experts phase over packed weights ---===//
//
// The experts that run GEMMs are cut into (expert, block of kRowBlock rows,
// column chunk) tasks, shared out among the threads as they come free, so
// uneven experts leave no thread idle. The first phase's task makes one
// chunk of hidden neurons for its rows (one GEMM over the chunk's gate and
// up columns, then the SwiGLU over that tile while it is in cache); the
// second phase's makes one chunk of output columns from the hidden rows.
// Every task runs its GEMM on its own thread over the same rows, whatever
// the thread count, so the result does not depend on it. A row block's GEMM
// reads its row count rounded up to kRowStep: the rows past the expert's
// are the next expert's (or zeros at the end), computed and dropped.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/ExpertPhases.h"
#include "runtime/cpu/ExpertStreaming.h"
#include "runtime/cpu/PackedExperts.h"
#include "runtime/cpu/Scratch.h"

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

/// Runs task(block, chunk) for every row block and chunk, dynamically
/// shared among the threads; returns the first error.
template <typename Task>
absl::Status runTasks(const std::vector<RowBlock> &blocks, int64_t chunks,
                      const Task &task) {
  int64_t count = int64_t(blocks.size()) * chunks;
  std::mutex mutex;
  absl::Status first;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < count; ++t) {
    absl::Status s = task(blocks[t / chunks], t % chunks);
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
                                  float *staging) {
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
  if (blocks.empty())
    return absl::OkStatus();

  // Inputs and hidden rows by grouped row, then kRowStep rows of zeros that
  // the last block's GEMMs may read.
  bool bf16 = packed.bf16();
  size_t bytes = bf16 ? sizeof(uint16_t) : sizeof(float);
  int64_t rows = routing.first[routing.experts - 1] +
                 routing.counts[routing.experts - 1];
  int64_t padded = rows + PackedExperts::kRowStep;
  char *inputs = scratch<char, 0>(padded * d * bytes);
  char *hidden = scratch<char, 1>(padded * f * bytes);
  std::memset(inputs + rows * d * bytes, 0, (padded - rows) * d * bytes);
  std::memset(hidden + rows * f * bytes, 0, (padded - rows) * f * bytes);
  gatherRows(x, d, routing.slots.data(), rows, routing.k,
             bf16 ? nullptr : reinterpret_cast<float *>(inputs),
             bf16 ? reinterpret_cast<uint16_t *>(inputs) : nullptr,
             Threads::kAll);

  auto gateUp = [&](const RowBlock &b, int64_t j) {
    int64_t w = packed.gateUpWidth(j);
    float *tile =
        scratch<float, 2>(PackedExperts::kRowBlock * 2 * PackedExperts::kGateUpChunk);
    if (auto s = packed.gateUp(b.expert, j, inputs + b.firstRow * d * bytes,
                               b.rows, tile);
        !s.ok())
      return s;
    for (int64_t r = 0; r < b.rows; ++r) {
      size_t at = (b.firstRow + r) * f + j * PackedExperts::kGateUpChunk;
      swigluForward(tile + r * 2 * w, tile + r * 2 * w + w, w,
                    bf16 ? nullptr : reinterpret_cast<float *>(hidden) + at,
                    bf16 ? reinterpret_cast<uint16_t *>(hidden) + at : nullptr);
    }
    return absl::OkStatus();
  };
  if (auto s = runTasks(blocks, packed.gateUpChunks(), gateUp); !s.ok())
    return s;

  auto down = [&](const RowBlock &b, int64_t j) {
    int64_t w = packed.downWidth(j);
    float *tile =
        scratch<float, 3>(PackedExperts::kRowBlock * PackedExperts::kDownChunk);
    if (auto s = packed.down(b.expert, j, hidden + b.firstRow * f * bytes,
                             b.rows, tile);
        !s.ok())
      return s;
    for (int64_t r = 0; r < b.rows; ++r)
      std::memcpy(staging + (b.firstRow + r) * d + j * PackedExperts::kDownChunk,
                  tile + r * w, w * sizeof(float));
    return absl::OkStatus();
  };
  return runTasks(blocks, packed.downChunks(), down);
}

} // namespace moert::cpu
