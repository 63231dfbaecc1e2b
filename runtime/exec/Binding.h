//===- Binding.h - bind an artifact's values and launches -------*- C++ -*-===//
//
// Shared by the programs' runners (Executor for forward, Trainer for the
// training step): every value of the artifact gets its memory, then every
// kernel of a program is bound to its values and prepared (checked) once.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXEC_BINDING_H
#define MOERT_EXEC_BINDING_H

#include "runtime/exec/Backend.h"

#include <vector>

namespace moert {

/// The memory of every value of `model`: parameter i at params[i], program
/// input i at inputs[i] (null past the end: an input the runner does not
/// feed), arena values at their offsets in `arena`; source tensors unbound.
std::vector<TensorRef> bindValues(const fb::Model &model,
                                  const std::vector<void *> &params,
                                  const std::vector<void *> &inputs,
                                  void *arena);

/// The launches of `program` over `values`, each prepared by `backend`; an
/// error names the kernel and where it came from.
absl::StatusOr<std::vector<KernelLaunch>>
prepareLaunches(const fb::Program &program,
                const std::vector<TensorRef> &values, Backend &backend);

} // namespace moert

#endif // MOERT_EXEC_BINDING_H
