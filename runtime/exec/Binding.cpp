//===- Binding.cpp - bind an artifact's values and launches ---------------===//

#include "runtime/exec/Binding.h"

#include "absl/strings/str_cat.h"

namespace moert {

std::vector<TensorRef> bindValues(const fb::Model &model,
                                  const std::vector<void *> &params,
                                  const std::vector<void *> &inputs,
                                  void *arena) {
  std::vector<TensorRef> values;
  for (const fb::Value *value : *model.values()) {
    TensorRef ref;
    ref.dtype = fromSchema(value->dtype());
    ref.shape.assign(value->shape()->begin(), value->shape()->end());
    switch (value->kind()) {
    case fb::ValueKind::Param:
      ref.data = params[value->index()];
      break;
    case fb::ValueKind::Input:
      if (size_t(value->index()) < inputs.size())
        ref.data = inputs[value->index()];
      break;
    case fb::ValueKind::Arena:
      ref.data = static_cast<uint8_t *>(arena) + value->offset();
      break;
    case fb::ValueKind::Source: // read by the initialisation program only
      break;
    }
    values.push_back(std::move(ref));
  }
  return values;
}

absl::StatusOr<std::vector<KernelLaunch>>
prepareLaunches(const fb::Program &program,
                const std::vector<TensorRef> &values, Backend &backend) {
  std::vector<KernelLaunch> launches;
  for (const fb::Kernel *kernel : *program.kernels()) {
    KernelLaunch launch;
    launch.kernel = kernel;
    for (int32_t id : *kernel->operands())
      launch.operands.push_back(values[id]);
    for (int32_t id : *kernel->results())
      launch.results.push_back(values[id]);
    if (absl::Status status = backend.prepare(launch); !status.ok())
      return absl::InvalidArgumentError(absl::StrCat(
          "kernel ", kernel->kernel()->str(), " (", kernel->location()->str(),
          "): ", status.message()));
    launches.push_back(std::move(launch));
  }
  return launches;
}

} // namespace moert
