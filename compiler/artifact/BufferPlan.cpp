//===- BufferPlan.cpp - activation memory planning ------------------------===//

#include "compiler/artifact/BufferPlan.h"

#include "dialects/moe/MoeOps.h"

#include <algorithm>
#include <numeric>
#include <vector>

using namespace mlir;
using namespace mlir::moe;

namespace {
constexpr int64_t kAlignment = 64; // a cache line; enough for AVX-512 loads

/// The largest value the planner takes (256 TiB): far beyond any machine,
/// and small enough that no sum of values overflows.
constexpr int64_t kMaxValueBytes = int64_t(1) << 48;

int64_t alignUp(int64_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

/// A planned value, the program positions it is live over (from its
/// definition to its last reader, both included) and its place.
struct Lifetime {
  Value value;
  int64_t bytes; // aligned
  int64_t first, last;
  int64_t offset = 0;

  bool overlaps(const Lifetime &other) const {
    return first <= other.last && other.first <= last;
  }
};

/// Places the values largest first, each at the smallest gap that fits among
/// the values already placed that are live at the same time, else above
/// them (the greedy-by-size placement of TFLite's arena planner). Knowing
/// every lifetime up front, it packs mixed sizes far tighter than placing
/// values as the program creates them.
void placeBySize(std::vector<Lifetime> &values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return values[a].bytes > values[b].bytes;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy; // [offset, end) in use
  for (size_t i : order) {
    Lifetime &value = values[i];
    busy.clear();
    for (size_t j : placed)
      if (values[j].overlaps(value))
        busy.emplace_back(values[j].offset, values[j].offset + values[j].bytes);
    std::sort(busy.begin(), busy.end());
    int64_t top = 0, best = -1, bestGap = 0;
    for (auto [begin, end] : busy) {
      int64_t gap = begin - top;
      if (gap >= value.bytes && (best < 0 || gap < bestGap)) {
        best = top;
        bestGap = gap;
      }
      top = std::max(top, end);
    }
    value.offset = best >= 0 ? best : top;
    placed.push_back(i);
  }
}

} // namespace

int64_t moe::arenaBytesOf(int64_t bytes) { return alignUp(bytes); }

FailureOr<BufferPlan> moe::planBuffers(func::FuncOp function,
                                       const ActivationStorage &storage) {
  // Program order, and the last position at which each value is read.
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t index = 0;
  function.walk([&](Operation *op) { position[op] = index++; });
  auto lastUse = [&](Value value) {
    int64_t last = position[value.getDefiningOp()];
    for (Operation *user : value.getUsers())
      last = std::max(last, position[user]);
    return last;
  };

  llvm::DenseSet<Value> returned;
  for (Value result : function.getBody().front().getTerminator()->getOperands())
    returned.insert(result);

  BufferPlan plan;
  std::vector<Lifetime> values;
  for (Operation &op : function.getBody().front()) {
    if (isa<ReadParamOp>(op) || op.getNumResults() == 0)
      continue;
    for (Value result : op.getResults()) {
      auto type = llvm::dyn_cast<RankedTensorType>(result.getType());
      if (!type || !type.hasStaticShape())
        return op.emitOpError()
               << "result type " << result.getType()
               << " is not a static tensor; run moe-specialize-shapes first";
      // Checked: shapes from absurd batch and seq sizes wrapped around.
      int64_t bytes = storage.elementBytes(result);
      for (int64_t extent : type.getShape())
        if (__builtin_mul_overflow(bytes, extent, &bytes) ||
            bytes > kMaxValueBytes)
          return op.emitOpError() << "result type " << type
                                  << " needs more than 2^48 bytes";
      plan.slots[result] = {0, bytes};
      plan.unplannedBytes += alignUp(bytes);
      if (returned.contains(result))
        plan.resultBytes += alignUp(bytes);
      values.push_back({result, alignUp(bytes), position[&op], lastUse(result)});
    }
  }
  placeBySize(values);

  // Bytes live at each position, in all and of the values the function does
  // not return (its activation peak), by one sweep over where lifetimes
  // begin and end.
  std::vector<int64_t> all(index + 1), activations(index + 1);
  for (const Lifetime &value : values) {
    all[value.first] += value.bytes;
    all[value.last + 1] -= value.bytes;
    if (!returned.contains(value.value)) {
      activations[value.first] += value.bytes;
      activations[value.last + 1] -= value.bytes;
    }
  }
  // For the report: the arena where it is fullest, the first such position
  // (where a value is defined: the live set grows only there).
  int64_t fullest = 0, liveAll = 0, liveActivations = 0, peak = -1;
  for (int64_t at = 0; at < index; ++at) {
    liveAll += all[at];
    liveActivations += activations[at];
    plan.activationBytes = std::max(plan.activationBytes, liveActivations);
    if (liveAll > fullest) {
      fullest = liveAll;
      peak = at;
    }
  }
  for (const Lifetime &value : values) {
    plan.slots[value.value].offset = value.offset;
    plan.arenaBytes = std::max(plan.arenaBytes, value.offset + value.bytes);
    if (value.first <= peak && peak <= value.last) {
      plan.liveAtPeak.push_back(value.value);
      if (value.first == peak)
        plan.peakOp = value.value.getDefiningOp();
    }
  }
  return plan;
}
