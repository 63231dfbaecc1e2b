//===- Initialize.h - run an artifact's initialisation program --*- C++ -*-===//

#ifndef MOERT_EXEC_INITIALIZE_H
#define MOERT_EXEC_INITIALIZE_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/Weights.h"

namespace moert {

/// Runs the `initialize` program of `artifact` on `backend`: reads its
/// source tensors from the checkpoint `weights` were bound from
/// (Weights::forInitialization) and writes the parameters it derives into
/// `weights`. Errors name the source tensor or the kernel.
absl::Status runInitialization(const Artifact &artifact, Weights &weights,
                               Backend &backend);

} // namespace moert

#endif // MOERT_EXEC_INITIALIZE_H
