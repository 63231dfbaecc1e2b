//===- PackedExpertsForward.cpp - the experts phase over packed weights ---===//
//
// The first phase cuts the experts that run GEMMs into (expert, block of
// kRowBlock rows, column chunk) tasks, shared out among the threads as they
// come free, so uneven experts leave no thread idle. A task makes one chunk
// of hidden neurons for its rows: one GEMM over the chunk's gate and up
// columns, then the SwiGLU over that tile while it is in cache.
//
// The second phase writes the output. Its tasks are (block of kTokenBlock
// tokens, chunk of output columns): each runs the down GEMM of every expert,
// in ascending expert order, over that expert's rows of its tokens, and
// adds the weighted rows straight into the tokens' outputs. A token's rows
// are thus added in ascending expert order by one thread, with no staging
// copy and no combine pass after, and the tasks are cut from the batch
// alone, so the result does not depend on the thread count. A GEMM reads
// its row count rounded up to kRowStep: the rows past its own are the
// next ones (or zeros at the end), computed and dropped.
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

/// Tokens per task of the output phase: enough rows per expert for full
/// GEMMs at large batches, few tasks' worth of weight re-reads.
constexpr int64_t kTokenBlock = 512;

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

/// Grouped rows [begin, end) of expert e whose tokens are in [t0, t1): its
/// rows ascend with the token.
std::pair<int64_t, int64_t> rowsOfTokens(const ExpertRouting &routing,
                                         int64_t e, int64_t t0, int64_t t1) {
  const int32_t *rows = routing.slots.data() + routing.first[e];
  const int32_t *end = rows + routing.counts[e];
  const int32_t *begin = std::lower_bound(rows, end, int32_t(t0 * routing.k));
  end = std::lower_bound(begin, end, int32_t(t1 * routing.k));
  return {routing.first[e] + (begin - rows), routing.first[e] + (end - rows)};
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

  // Inputs and hidden rows by grouped row, then kRowStep rows of zeros that
  // the last block's GEMMs may read.
  bool bf16 = packed.bf16();
  size_t bytes = bf16 ? sizeof(uint16_t) : sizeof(float);
  int64_t rows = routing.first[routing.experts - 1] +
                 routing.counts[routing.experts - 1];
  int64_t padded = rows + PackedExperts::kRowStep;
  char *hidden = scratch<char, 1>(padded * f * bytes);
  if (!blocks.empty()) {
    char *inputs = scratch<char, 0>(padded * d * bytes);
    std::memset(inputs + rows * d * bytes, 0, (padded - rows) * d * bytes);
    std::memset(hidden + rows * f * bytes, 0, (padded - rows) * f * bytes);
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

  // One task per (block of tokens, output chunk) adds every expert's rows of
  // those tokens, experts in ascending order, so each output element is
  // summed in that order by one thread whatever the thread count.
  int64_t tokenBlocks = (routing.tokens + kTokenBlock - 1) / kTokenBlock;
  auto down = [&](int64_t t) {
    int64_t t0 = t / packed.downChunks() * kTokenBlock;
    int64_t t1 = std::min(routing.tokens, t0 + kTokenBlock);
    int64_t j = t % packed.downChunks(), w = packed.downWidth(j);
    int64_t column = j * PackedExperts::kDownChunk;
    auto take = [&](int64_t row, const float *values) {
      if (!outputs.out) {
        std::memcpy(outputs.staging + row * d + column, values,
                    w * sizeof(float));
        return;
      }
      int32_t slot = routing.slots[row];
      addScaledRow(outputs.out + slot / routing.k * d + column,
                   routing.weights[slot], values, w);
    };
    if (outputs.out)
      for (int64_t token = t0; token < t1; ++token)
        std::fill_n(outputs.out + token * d + column, w, 0.0f);
    float *tile =
        scratch<float, 3>(PackedExperts::kRowBlock * PackedExperts::kDownChunk);
    for (int64_t e = 0; e < routing.experts; ++e) {
      auto [begin, end] = rowsOfTokens(routing, e, t0, t1);
      if (streamsExpert(block, routing.counts[e])) {
        for (int64_t row = begin; outputs.out && row < end; ++row)
          take(row, outputs.staging + row * d + column);
        continue;
      }
      for (int64_t first = begin; first < end;
           first += PackedExperts::kRowBlock) {
        int64_t n = std::min(PackedExperts::kRowBlock, end - first);
        if (auto s = packed.down(e, j, hidden + first * f * bytes, n, tile);
            !s.ok())
          return s;
        for (int64_t r = 0; r < n; ++r)
          take(first + r, tile + r * w);
      }
    }
    return absl::OkStatus();
  };
  return runTasks(tokenBlocks * packed.downChunks(), down);
}

} // namespace moert::cpu
