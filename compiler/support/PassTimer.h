//===- PassTimer.h - wall time of each pass of a pipeline -------*- C++ -*-===//
//
// A pass instrumentation that records each pass run on the top-level
// operation with its wall time, for moec's --report. It sits beside MLIR's
// own timing (--mlir-timing), which prints rather than hands back its
// figures, so both can be on at once.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_COMPILER_SUPPORT_PASSTIMER_H
#define MOEC_COMPILER_SUPPORT_PASSTIMER_H

#include "mlir/Pass/PassInstrumentation.h"

#include <chrono>
#include <string>
#include <vector>

namespace mlir::moe {

struct PassTime {
  std::string name; // the pass's command-line argument, e.g. moe-autodiff
  double ms = 0;
};

class PassTimer : public PassInstrumentation {
public:
  /// Appends to `times`, which must outlive the pass manager.
  explicit PassTimer(std::vector<PassTime> &times) : times(times) {}

  void runBeforePass(Pass *pass, Operation *op) override;
  void runAfterPass(Pass *pass, Operation *op) override;

private:
  std::vector<PassTime> &times;
  std::chrono::steady_clock::time_point start;
};

} // namespace mlir::moe

#endif // MOEC_COMPILER_SUPPORT_PASSTIMER_H
