//===- BufferPlan.cpp - activation memory planning ------------------------===//

#include "compiler/artifact/BufferPlan.h"

#include "dialects/moe/MoeOps.h"

#include <map>

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

/// Free ranges of the arena keyed by offset, merged with their neighbours.
class FreeList {
public:
  /// Best fit among free ranges, else the end of the arena (which grows).
  int64_t allocate(int64_t bytes) {
    auto best = free.end();
    for (auto it = free.begin(); it != free.end(); ++it)
      if (it->second >= bytes &&
          (best == free.end() || it->second < best->second))
        best = it;
    if (best == free.end()) {
      // Extend a free range that ends the arena rather than skipping it.
      if (!free.empty() && std::prev(free.end())->first +
                                   std::prev(free.end())->second == end) {
        auto last = std::prev(free.end());
        int64_t offset = last->first;
        end = offset + bytes;
        free.erase(last);
        return offset;
      }
      int64_t offset = end;
      end += bytes;
      return offset;
    }
    int64_t offset = best->first, size = best->second;
    free.erase(best);
    if (size > bytes)
      free[offset + bytes] = size - bytes;
    return offset;
  }

  void release(int64_t offset, int64_t bytes) {
    auto [it, inserted] = free.emplace(offset, bytes);
    (void)inserted;
    auto next = std::next(it);
    if (next != free.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free.erase(next);
    }
    if (it != free.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free.erase(it);
      }
    }
  }

  int64_t size() const { return end; }

private:
  std::map<int64_t, int64_t> free;
  int64_t end = 0;
};
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
  FreeList arena;
  int64_t liveActivations = 0;
  std::multimap<int64_t, Value> dying; // last use -> value
  for (Operation &op : function.getBody().front()) {
    int64_t here = position[&op];
    // Values whose last reader ran before this op are free again.
    while (!dying.empty() && dying.begin()->first < here) {
      Value value = dying.begin()->second;
      BufferSlot slot = plan.slots[value];
      arena.release(slot.offset, alignUp(slot.bytes));
      if (!returned.contains(value))
        liveActivations -= alignUp(slot.bytes);
      dying.erase(dying.begin());
    }
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
      int64_t before = arena.size();
      BufferSlot slot{arena.allocate(alignUp(bytes)), bytes};
      plan.slots[result] = slot;
      plan.unplannedBytes += alignUp(bytes);
      dying.emplace(lastUse(result), result);
      if (arena.size() > before) { // the live values are those in `dying`
        plan.liveAtPeak.clear();
        for (auto &live : dying)
          plan.liveAtPeak.push_back(live.second);
        plan.peakOp = &op;
      }
      if (returned.contains(result))
        plan.resultBytes += alignUp(bytes);
      else
        liveActivations += alignUp(bytes);
    }
    plan.activationBytes = std::max(plan.activationBytes, liveActivations);
  }
  plan.arenaBytes = arena.size();
  return plan;
}
