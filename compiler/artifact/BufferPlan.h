//===- BufferPlan.h - activation memory planning ----------------*- C++ -*-===//
//
// Places every activation of a static-shaped function in one arena, reusing
// the memory of values whose last use has passed (liveness in program
// order; placed largest first, each in the tightest gap among the values
// live beside it). The function's results (the
// logits; a training step's losses and parameter gradients) share the arena
// with the activations, taking memory the forward values free as the
// backward pass goes; the peak of the activations alone is reported apart,
// since a training step's gradients are as large as the model whatever the
// batch.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_ARTIFACT_BUFFERPLAN_H
#define MOEC_ARTIFACT_BUFFERPLAN_H

#include "compiler/artifact/ActivationStorage.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::moe {

struct BufferSlot {
  int64_t offset = 0;
  int64_t bytes = 0;
};

struct BufferPlan {
  /// Where each planned value lives (results of ops other than read_param).
  llvm::DenseMap<Value, BufferSlot> slots;
  /// Peak arena size with reuse.
  int64_t arenaBytes = 0;
  /// The largest sum of the live values the function does not return: its
  /// activation memory, apart from its results.
  int64_t activationBytes = 0;
  /// The size of its results.
  int64_t resultBytes = 0;
  /// What the same values would take without reuse, for reports.
  int64_t unplannedBytes = 0;
  /// The arena where it is fullest, for reports: the values live at the
  /// first op where the most bytes are (its operands and results), and that
  /// op. Their
  /// `arenaBytesOf` sizes and the arena's holes add up to `arenaBytes`.
  llvm::SmallVector<Value> liveAtPeak;
  Operation *peakOp = nullptr;
};

/// The arena bytes a value of `bytes` takes: its slot rounded up to the
/// arena's alignment.
int64_t arenaBytesOf(int64_t bytes);

/// Plans `function`, whose values must all have static shapes, each taking
/// the bytes `storage` gives it.
FailureOr<BufferPlan> planBuffers(func::FuncOp function,
                                  const ActivationStorage &storage);

} // namespace mlir::moe

#endif // MOEC_ARTIFACT_BUFFERPLAN_H
