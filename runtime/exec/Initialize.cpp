//===- Initialize.cpp - run an artifact's initialisation program ----------===//
//
// Source tensors (the dense FFN weights) are widened to fp32 once; every op
// of the program then runs as a kernel launch like those of `forward`, with
// write_param launches storing into the parameters' own memory and dtype.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Initialize.h"

#include "runtime/base/Float16.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <cstring>

namespace moert {
namespace {
std::vector<float> widen(const TensorView &tensor) {
  size_t count = tensor.bytes / dtypeSize(tensor.dtype);
  std::vector<float> values(count);
  const uint8_t *data = tensor.data;
  for (size_t i = 0; i < count; ++i) {
    if (tensor.dtype == DType::kF32) {
      std::memcpy(&values[i], data + 4 * i, 4);
      continue;
    }
    uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    values[i] = tensor.dtype == DType::kBF16 ? bf16ToFloat(bits) : f16ToFloat(bits);
  }
  return values;
}
} // namespace

absl::Status runInitialization(const Artifact &artifact, Weights &weights,
                               Backend &backend) {
  const fb::Model &model = artifact.model();
  const fb::Program *program = model.initialize();
  if (!program)
    return absl::OkStatus();
  const HfCheckpoint *checkpoint = weights.checkpoint();
  if (!checkpoint || !model.sources())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": the initialisation program needs the "
                                      "source checkpoint"));

  std::unique_ptr<Stream> stream = backend.createStream();
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> arena =
      backend.allocate(std::max<int64_t>(model.arena_bytes(), 1));
  if (!arena.ok())
    return arena.status();

  // Source tensors, checked against what the program expects.
  std::vector<std::vector<float>> sources(model.sources()->size());
  std::vector<TensorRef> values;
  for (const fb::Value *value : *model.values()) {
    TensorRef ref;
    ref.dtype = fromSchema(value->dtype());
    ref.shape.assign(value->shape()->begin(), value->shape()->end());
    switch (value->kind()) {
    case fb::ValueKind::Source: {
      std::string name = model.sources()->Get(value->index())->str();
      const TensorView *tensor = checkpoint->find(name);
      if (!tensor)
        return absl::NotFoundError(absl::StrCat(
            "source tensor '", name, "' is missing from the checkpoint"));
      if (tensor->shape != ref.shape ||
          (tensor->dtype != DType::kF32 && tensor->dtype != DType::kBF16 &&
           tensor->dtype != DType::kF16))
        return absl::InvalidArgumentError(absl::StrCat(
            checkpoint->describe(name), ": source tensor '", name,
            "' has shape [", absl::StrJoin(tensor->shape, ", "), "] of ",
            dtypeName(tensor->dtype), "; the program needs [",
            absl::StrJoin(ref.shape, ", "), "] of a float type"));
      sources[value->index()] = widen(*tensor);
      ref.data = sources[value->index()].data();
      break;
    }
    case fb::ValueKind::Arena:
      ref.data = static_cast<uint8_t *>((*arena)->data()) + value->offset();
      break;
    case fb::ValueKind::Param:
      ref.data = const_cast<void *>(weights.data(value->index()));
      break;
    case fb::ValueKind::Input:
      break;
    }
    values.push_back(std::move(ref));
  }

  for (const fb::Kernel *kernel : *program->kernels()) {
    KernelLaunch launch;
    launch.kernel = kernel;
    for (int32_t id : *kernel->operands())
      launch.operands.push_back(values[id]);
    for (int32_t id : *kernel->results())
      launch.results.push_back(values[id]);
    if (kernel->op() == fb::OpKind::WriteParam) {
      int64_t index = kernel->int_attrs() && kernel->int_attrs()->size() == 1
                          ? kernel->int_attrs()->Get(0)
                          : -1;
      if (index < 0 || size_t(index) >= model.params()->size() ||
          !weights.mutableData(index))
        return absl::InvalidArgumentError(absl::StrCat(
            artifact.path(), ": ", kernel->location()->str(),
            " writes a parameter the program does not own"));
      const fb::Param &param = *model.params()->Get(index);
      launch.results.push_back(
          {weights.mutableData(index), fromSchema(param.dtype()),
           std::vector<int64_t>(param.shape()->begin(), param.shape()->end())});
    }
    auto where = [&](const absl::Status &status) {
      return absl::Status(status.code(),
                          absl::StrCat(artifact.path(), ": kernel ",
                                       kernel->kernel()->str(), " (",
                                       kernel->location()->str(),
                                       "): ", status.message()));
    };
    if (absl::Status status = backend.prepare(launch); !status.ok())
      return where(status);
    if (absl::Status status = backend.launch(launch, *stream); !status.ok())
      return where(status);
  }
  return stream->synchronize();
}

} // namespace moert
