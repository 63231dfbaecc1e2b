//===- Initialize.cpp - run an artifact's initialisation program ----------===//
//
// Every op of the program but write_param runs as a kernel launch like those
// of `forward`; write_param hands the value to a sink (the weights in memory,
// or a checkpoint being streamed to disk).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Initialize.h"

#include "runtime/base/Convert.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <cstring>
#include <map>
#include <set>
#include <sys/mman.h>
#include <unistd.h>

namespace moert {
namespace {
/// Lets the kernel drop a memory-mapped tensor's pages once read: they are
/// clean file pages, read again from the file if ever needed.
void release(const TensorView &tensor) {
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data) & ~uintptr_t(page - 1);
  uintptr_t end = reinterpret_cast<uintptr_t>(tensor.data) + tensor.bytes;
  if (end > begin)
    ::madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
}

std::vector<int64_t> shapeOf(const fb::Param &param) {
  return {param.shape()->begin(), param.shape()->end()};
}

/// The parameters the program writes, in the order it writes them.
std::vector<size_t> derivedParams(const fb::Model &model) {
  std::vector<size_t> order;
  for (const fb::Kernel *kernel : *model.initialize()->kernels())
    if (kernel->op() == fb::OpKind::WriteParam && kernel->int_attrs() &&
        kernel->int_attrs()->size() == 1 && kernel->int_attrs()->Get(0) >= 0 &&
        size_t(kernel->int_attrs()->Get(0)) < model.params()->size())
      order.push_back(size_t(kernel->int_attrs()->Get(0)));
  return order;
}

/// Which kernels of the program `share` needs: those a write_param depends
/// on, where a stack split over ranks depends only on this share's inputs.
std::vector<bool> neededKernels(const fb::Model &model, ExpertShare share) {
  const auto &kernels = *model.initialize()->kernels();
  std::vector<bool> needed(kernels.size(), false);
  std::set<int32_t> neededValues;
  for (size_t k = kernels.size(); k-- > 0;) {
    const fb::Kernel &kernel = *kernels.Get(k);
    bool writes = kernel.op() == fb::OpKind::WriteParam;
    for (int32_t id : *kernel.results())
      writes = writes || neededValues.count(id);
    if (!writes)
      continue;
    needed[k] = true;
    const auto &operands = *kernel.operands();
    size_t first = 0, count = operands.size();
    auto *attrs = kernel.int_attrs();
    if (kernel.op() == fb::OpKind::Stack && attrs && attrs->size() == 1 &&
        attrs->Get(0) == share.shares && share.shares > 1) {
      count = operands.size() / size_t(share.shares);
      first = size_t(share.index) * count;
    }
    for (size_t i = first; i < first + count && i < operands.size(); ++i)
      neededValues.insert(operands.Get(i));
  }
  return needed;
}
} // namespace

absl::Status runInitialization(const Artifact &artifact,
                               const HfCheckpoint &source, Backend &backend,
                               const ParamSink &sink, ExpertShare share) {
  const fb::Model &model = artifact.model();
  const fb::Program *program = model.initialize();
  if (!program)
    return absl::OkStatus();
  if (!model.sources())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": the initialisation program has no "
                                      "source table"));
  std::unique_ptr<Stream> stream = backend.createStream();
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> arena =
      backend.allocate(std::max<int64_t>(model.arena_bytes(), 1));
  if (!arena.ok())
    return arena.status();

  std::vector<TensorRef> values;
  for (const fb::Value *value : *model.values()) {
    TensorRef ref;
    ref.dtype = fromSchema(value->dtype());
    ref.shape.assign(value->shape()->begin(), value->shape()->end());
    if (value->kind() == fb::ValueKind::Arena)
      ref.data = static_cast<uint8_t *>((*arena)->data()) + value->offset();
    values.push_back(std::move(ref));
  }

  // Sources are widened to fp32 just before their first reader and freed
  // after their last.
  const auto &kernels = *program->kernels();
  std::vector<bool> needed = neededKernels(model, share);
  std::map<int32_t, size_t> lastUse;
  for (size_t k = 0; k < kernels.size(); ++k)
    for (int32_t id : *kernels.Get(k)->operands())
      if (needed[k] &&
          model.values()->Get(id)->kind() == fb::ValueKind::Source)
        lastUse[id] = k;
  std::map<int32_t, std::vector<float>> widened;
  std::map<int32_t, std::unique_ptr<DeviceBuffer>> uploaded;
  auto widen = [&](int32_t id) -> absl::Status {
    const fb::Value &value = *model.values()->Get(id);
    std::string name = model.sources()->Get(value.index())->str();
    const TensorView *tensor = source.find(name);
    if (!tensor)
      return absl::NotFoundError(absl::StrCat(
          "source tensor '", name, "' is missing from the checkpoint"));
    if (tensor->shape != values[id].shape || !isFloat(tensor->dtype))
      return absl::InvalidArgumentError(absl::StrCat(
          source.describe(name), ": source tensor '", name, "' has shape [",
          absl::StrJoin(tensor->shape, ", "), "] of ",
          dtypeName(tensor->dtype), "; the program needs [",
          absl::StrJoin(values[id].shape, ", "), "] of a float type"));
    std::vector<float> &data = widened[id];
    data.resize(values[id].numElements());
    convertFloats(tensor->data, tensor->dtype, data.data(), DType::kF32,
                  int64_t(data.size()));
    release(*tensor);
    values[id].data = data.data();
    if (backend.sharesHostMemory())
      return absl::OkStatus();
    // A device backend reads its own copy (freed after the last reader).
    absl::StatusOr<std::unique_ptr<DeviceBuffer>> buffer =
        backend.allocate(data.size() * sizeof(float));
    if (!buffer.ok())
      return buffer.status();
    if (auto status = backend.copyToDevice(data.data(), (*buffer)->data(),
                                           data.size() * sizeof(float),
                                           *stream);
        !status.ok())
      return status;
    values[id].data = (*buffer)->data();
    uploaded[id] = std::move(*buffer);
    widened.erase(id);
    return absl::OkStatus();
  };

  std::vector<float> host;
  for (size_t k = 0; k < kernels.size(); ++k) {
    if (!needed[k])
      continue; // another rank's experts
    const fb::Kernel *kernel = kernels.Get(k);
    auto where = [&](const absl::Status &status) {
      return absl::Status(status.code(),
                          absl::StrCat(artifact.path(), ": kernel ",
                                       kernel->kernel()->str(), " (",
                                       kernel->location()->str(),
                                       "): ", status.message()));
    };
    KernelLaunch launch;
    launch.kernel = kernel;
    for (int32_t id : *kernel->operands()) {
      if (lastUse.count(id) && !widened.count(id) && !uploaded.count(id))
        if (absl::Status status = widen(id); !status.ok())
          return status;
      launch.operands.push_back(values[id]);
    }
    for (int32_t id : *kernel->results())
      launch.results.push_back(values[id]);

    if (kernel->op() == fb::OpKind::WriteParam) {
      int64_t index = kernel->int_attrs() && kernel->int_attrs()->size() == 1
                          ? kernel->int_attrs()->Get(0)
                          : -1;
      if (launch.operands.size() != 1 || index < 0 ||
          size_t(index) >= model.params()->size() ||
          launch.operands[0].dtype != DType::kF32 ||
          launch.operands[0].shape != shapeOf(*model.params()->Get(index)))
        return where(absl::InvalidArgumentError(
            "writes a value that does not fit the parameter"));
      const TensorRef &value = launch.operands[0];
      const float *data = value.as<float>();
      if (!backend.sharesHostMemory()) {
        host.resize(value.numElements());
        if (auto status = backend.copyToHost(value.data, host.data(),
                                             host.size() * sizeof(float),
                                             *stream);
            !status.ok())
          return where(status);
        if (auto status = stream->synchronize(); !status.ok())
          return where(status);
        data = host.data();
      }
      if (absl::Status status = sink(size_t(index), data, value.numElements());
          !status.ok())
        return status;
    } else {
      if (absl::Status status = backend.prepare(launch); !status.ok())
        return where(status);
      if (absl::Status status = backend.launch(launch, *stream); !status.ok())
        return where(status);
    }
    for (int32_t id : *kernel->operands())
      if (auto last = lastUse.find(id); last != lastUse.end() && last->second == k) {
        widened.erase(id);
        uploaded.erase(id);
      }
  }
  return stream->synchronize();
}

absl::Status runInitialization(const Artifact &artifact, Weights &weights,
                               Backend &backend, ExpertShare share) {
  const fb::Model &model = artifact.model();
  if (!weights.checkpoint())
    return absl::InvalidArgumentError(
        absl::StrCat(artifact.path(), ": the initialisation program needs the "
                                      "source checkpoint"));
  return runInitialization(
      artifact, *weights.checkpoint(), backend,
      [&](size_t param, const float *values, int64_t count) -> absl::Status {
        void *target = weights.mutableData(param);
        if (!target)
          return absl::InvalidArgumentError(absl::StrCat(
              artifact.path(), ": the program writes parameter '",
              model.params()->Get(param)->name()->str(),
              "', which the weights do not own"));
        convertFloats(values, DType::kF32, target,
                      fromSchema(model.params()->Get(param)->dtype()), count);
        return absl::OkStatus();
      },
      share);
}

absl::Status writeUpcycledCheckpoint(const Artifact &artifact,
                                     const std::string &denseDir,
                                     const std::string &outDir,
                                     Backend &backend,
                                     uint64_t maxShardBytes) {
  const fb::Model &model = artifact.model();
  if (!model.initialize())
    return absl::InvalidArgumentError(
        "the artifact has no initialisation program (compile an upcycled "
        "model to derive its weights from a dense checkpoint)");
  absl::StatusOr<HfCheckpoint> dense = HfCheckpoint::open(denseDir);
  if (!dense.ok())
    return dense.status();

  // Output tensors: the copied parameters in table order, then the derived
  // ones in the order the program writes them; experts unstacked.
  std::vector<size_t> derived = derivedParams(model);
  std::set<size_t> isDerived(derived.begin(), derived.end());
  std::set<std::string> used;
  if (model.sources())
    for (const flatbuffers::String *name : *model.sources()) {
      if (!dense->find(name->string_view()))
        return absl::NotFoundError(absl::StrCat(
            denseDir, ": tensor '", name->str(),
            "', a source of the initialisation program, is missing: "
            "--init-from needs the dense checkpoint the model was upcycled "
            "from"));
      used.insert(name->str());
    }
  std::vector<size_t> order;
  for (size_t i = 0; i < model.params()->size(); ++i)
    if (!isDerived.count(i))
      order.push_back(i);
  order.insert(order.end(), derived.begin(), derived.end());

  std::vector<TensorToWrite> specs;
  for (size_t index : order) {
    const fb::Param &param = *model.params()->Get(index);
    std::vector<int64_t> shape = shapeOf(param);
    std::string name = param.name()->str();
    DType type = fromSchema(param.dtype());
    if (name.find('*') == std::string::npos) {
      specs.push_back({name, type, shape, nullptr});
      continue;
    }
    std::vector<int64_t> expertShape(shape.begin() + 1, shape.end());
    for (int64_t e = 0; e < shape[0]; ++e)
      specs.push_back({expertName(name, e), type, expertShape, nullptr});
  }
  // Every copied parameter must be in the checkpoint as it is, and every
  // checkpoint tensor must be used.
  for (size_t index : order) {
    if (isDerived.count(index))
      continue;
    const fb::Param &param = *model.params()->Get(index);
    std::string name = param.name()->str();
    const TensorView *tensor = dense->find(name);
    if (!tensor)
      return absl::NotFoundError(absl::StrCat(
          denseDir, ": tensor '", name, "' is missing from the checkpoint"));
    if (tensor->shape != shapeOf(param) || !isFloat(tensor->dtype))
      return absl::InvalidArgumentError(absl::StrCat(
          dense->describe(name), ": tensor '", name, "' has shape [",
          absl::StrJoin(tensor->shape, ", "), "] of ", dtypeName(tensor->dtype),
          " but the model needs [", absl::StrJoin(shapeOf(param), ", "),
          "] of a float type"));
    used.insert(name);
  }
  for (const std::string &name : dense->names())
    if (!used.count(name))
      return absl::InvalidArgumentError(absl::StrCat(
          dense->describe(name), ": tensor '", name,
          "' is not a parameter of the model nor a source of its "
          "initialisation"));

  return writeCheckpointDirectory(
      outDir, model.config_json() ? model.config_json()->str() : "{}",
      [&](const std::string &staging) -> absl::Status {
        absl::StatusOr<std::unique_ptr<WeightShardsStream>> out =
            WeightShardsStream::create(staging, specs, maxShardBytes,
                                       {{"format", "pt"}},
                                       /*requireData=*/false);
        if (!out.ok())
          return out.status();
        // Copied parameters, one at a time, converted where dtypes differ.
        std::vector<uint8_t> buffer;
        for (size_t index : order) {
          if (isDerived.count(index))
            continue;
          const fb::Param &param = *model.params()->Get(index);
          const TensorView &tensor = *dense->find(param.name()->string_view());
          DType type = fromSchema(param.dtype());
          absl::Status status;
          if (tensor.dtype == type) { // straight from the mapped file
            status = (*out)->append(tensor.data, tensor.bytes);
          } else {
            int64_t count = int64_t(tensor.bytes / dtypeSize(tensor.dtype));
            buffer.resize(count * dtypeSize(type));
            convertFloats(tensor.data, tensor.dtype, buffer.data(), type, count);
            status = (*out)->append(buffer.data(), buffer.size());
          }
          release(tensor);
          if (!status.ok())
            return status;
        }
        // Derived parameters, as the program produces them.
        absl::Status derivedStatus = runInitialization(
            artifact, *dense, backend,
            [&](size_t param, const float *values, int64_t count) {
              DType type = fromSchema(model.params()->Get(param)->dtype());
              buffer.resize(count * dtypeSize(type));
              convertFloats(values, DType::kF32, buffer.data(), type, count);
              return (*out)->append(buffer.data(), buffer.size());
            });
        if (!derivedStatus.ok())
          return derivedStatus;
        return (*out)->finish();
      });
}

} // namespace moert
