//===- LaunchChecks.h - shape rules every backend enforces ------*- C++ -*-===//

#ifndef MOERT_EXEC_LAUNCHCHECKS_H
#define MOERT_EXEC_LAUNCHCHECKS_H

#include "runtime/exec/Backend.h"

namespace moert {

/// Checks that a launch's operands and results have the shapes, dtypes and
/// attributes its op needs. Backends call it from prepare().
absl::Status checkLaunch(const KernelLaunch &launch);

/// The same for the ops of training programs (checkLaunch forwards them).
absl::Status checkGradLaunch(const KernelLaunch &launch);

} // namespace moert

#endif // MOERT_EXEC_LAUNCHCHECKS_H
