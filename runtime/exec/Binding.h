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
#include "runtime/exec/Weights.h"

#include <vector>

namespace moert {

/// Where each parameter lives for `backend`: the weights in place where
/// the backend shares host memory, else copies uploaded once into buffers
/// that `uploaded` keeps. Weights of another parameter count are an error.
absl::StatusOr<std::vector<void *>>
placeParams(const fb::Model &model, const Weights &weights, Backend &backend,
            Stream &stream, std::vector<std::unique_ptr<DeviceBuffer>> &uploaded);

/// The memory of every value of `model`: parameter i at params[i], program
/// input i at inputs[i] (null past the end: an input the runner does not
/// feed), arena values at their offsets in `arena`, caches at theirs in
/// `caches` (null: unbound); source tensors unbound.
std::vector<TensorRef> bindValues(const fb::Model &model,
                                  const std::vector<void *> &params,
                                  const std::vector<void *> &inputs,
                                  void *arena, void *caches = nullptr);

/// The launches of `program` over `values`, each prepared by `backend`; an
/// error names the kernel and where it came from. `constantWeights`: the
/// parameters keep their values while the launches live (KernelLaunch).
absl::StatusOr<std::vector<KernelLaunch>>
prepareLaunches(const fb::Program &program,
                const std::vector<TensorRef> &values, Backend &backend,
                bool constantWeights);

} // namespace moert

#endif // MOERT_EXEC_BINDING_H
