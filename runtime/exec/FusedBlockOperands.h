//===- FusedBlockOperands.h - a fused MoE launch's operands -----*- C++ -*-===//
//
// Part of the kernel contract: the operands a fused MoE block's launch has
// beyond its fixed ones, and where, for every backend and the checks.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_FUSEDBLOCKOPERANDS_H
#define MOERT_EXEC_FUSEDBLOCKOPERANDS_H

#include "runtime/exec/Backend.h"

#include <algorithm>

namespace moert {

/// Where a fused block's optional operands are. Forward: input, router,
/// gate, up, down, then the labels when integer attribute 3 (ignore_index)
/// is given. Backward: those five, the logits, the output gradient, then
/// optionally the logits' own gradient, the labels (as above), and the kept
/// gate and up hidden states (two more operands).
struct FusedBlockOperands {
  int labels = -1, logitsGrad = -1, saved = -1; // -1: absent

  explicit FusedBlockOperands(const KernelLaunch &launch) {
    auto *attrs = launch.kernel->int_attrs();
    bool labelled = attrs && attrs->size() > 3;
    int count = int(launch.operands.size());
    if (launch.kernel->op() != fb::OpKind::FusedExpertsGrad) {
      labels = labelled ? 5 : -1;
      return;
    }
    // The logits gradient and two hidden states: one, two or three more.
    int extra = std::max(0, count - 7 - (labelled ? 1 : 0));
    logitsGrad = extra % 2 == 1 ? 7 : -1;
    labels = labelled ? 7 + extra % 2 : -1;
    saved = extra >= 2 ? count - 2 : -1;
  }
  /// Operands a launch of this layout has.
  int count(bool grad) const {
    return (grad ? 7 : 5) + (labels >= 0) + (logitsGrad >= 0) +
           2 * (saved >= 0);
  }
};

} // namespace moert

#endif // MOERT_EXEC_FUSEDBLOCKOPERANDS_H
