//===- Binding.cpp - bind an artifact's values and launches ---------------===//

#include "runtime/exec/Binding.h"

#include "absl/strings/str_cat.h"

namespace moert {

absl::StatusOr<std::vector<void *>>
placeParams(const fb::Model &model, const Weights &weights, Backend &backend,
            Stream &stream, std::vector<std::unique_ptr<DeviceBuffer>> &uploaded) {
  if (weights.size() != model.params()->size())
    return absl::InvalidArgumentError(absl::StrCat(
        "the weights hold ", weights.size(),
        " parameters but the artifact declares ", model.params()->size()));
  std::vector<void *> params(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    if (backend.sharesHostMemory()) {
      params[i] = const_cast<void *>(weights.data(i));
      continue;
    }
    const fb::Param &param = *model.params()->Get(i);
    size_t bytes = numElements(*param.shape()) *
                   dtypeSize(fromSchema(param.dtype()));
    absl::StatusOr<std::unique_ptr<DeviceBuffer>> buffer = backend.allocate(bytes);
    if (!buffer.ok())
      return buffer.status();
    if (auto status = backend.copyToDevice(weights.data(i), (*buffer)->data(),
                                           bytes, stream);
        !status.ok())
      return status;
    params[i] = (*buffer)->data();
    uploaded.push_back(std::move(*buffer));
  }
  return params;
}

std::vector<TensorRef> bindValues(const fb::Model &model,
                                  const std::vector<void *> &params,
                                  const std::vector<void *> &inputs,
                                  void *arena, void *caches) {
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
    case fb::ValueKind::Cache:
      if (caches)
        ref.data = static_cast<uint8_t *>(caches) + value->offset();
      break;
    }
    values.push_back(std::move(ref));
  }
  return values;
}

absl::StatusOr<std::vector<KernelLaunch>>
prepareLaunches(const fb::Program &program,
                const std::vector<TensorRef> &values, Backend &backend,
                bool constantWeights) {
  std::vector<KernelLaunch> launches;
  for (const fb::Kernel *kernel : *program.kernels()) {
    KernelLaunch launch;
    launch.kernel = kernel;
    launch.constantWeights = constantWeights;
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
