//===- PassTimer.cpp - wall time of each pass of a pipeline ---------------===//

#include "compiler/support/PassTimer.h"

#include "mlir/Pass/Pass.h"

using namespace mlir;
using namespace mlir::moe;

// Passes nested under the top-level operation (which may run in parallel,
// one per function) are inside the time of the top-level pass that runs
// them, and are not recorded apart.
static bool isTopLevel(Operation *op) { return !op->getParentOp(); }

void PassTimer::runBeforePass(Pass *, Operation *op) {
  if (isTopLevel(op))
    start = std::chrono::steady_clock::now();
}

void PassTimer::runAfterPass(Pass *pass, Operation *op) {
  if (!isTopLevel(op))
    return;
  std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - start;
  StringRef name = pass->getArgument();
  times.push_back(
      {(name.empty() ? pass->getName() : name).str(), elapsed.count()});
}
