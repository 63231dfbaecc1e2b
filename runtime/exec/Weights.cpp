//===- Weights.cpp - a model's parameters, loaded or initialised ----------===//

#include "runtime/exec/Weights.h"

#include "runtime/base/Convert.h"
#include "runtime/checkpoint/Init.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/comm/Gather.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <cstring>
#include <set>
#include <unistd.h>

namespace moert {
namespace {

std::string shapeString(const std::vector<int64_t> &shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::vector<int64_t> shapeOf(const fb::Param &param) {
  return {param.shape()->begin(), param.shape()->end()};
}

} // namespace

bool isStacked(const fb::Param &param) {
  return param.name()->string_view().find('*') != std::string_view::npos;
}

std::string expertName(const std::string &stackedName, int64_t expert) {
  std::string name = stackedName;
  size_t star = name.find('*');
  if (star != std::string::npos)
    name.replace(star, 1, std::to_string(expert));
  return name;
}

namespace {
/// Runs `build`, turning an allocation failure (a model too large for this
/// machine) into a status instead of an abort.
template <typename Build>
absl::StatusOr<Weights> guardAllocation(const char *what, Build build) {
  try {
    return build();
  } catch (const std::bad_alloc &) {
    return absl::ResourceExhaustedError(
        absl::StrCat("not enough memory to hold the weights ", what));
  }
}
} // namespace

absl::StatusOr<Weights> Weights::fromCheckpoint(const fb::Model &model,
                                                const std::string &dir,
                                                ExpertShare share) {
  return guardAllocation("of the checkpoint", [&] {
    return load(model, dir, /*derive=*/false, share);
  });
}

absl::StatusOr<Weights> Weights::forInitialization(const fb::Model &model,
                                                   const std::string &dir) {
  if (!model.initialize())
    return absl::InvalidArgumentError(
        "the artifact has no initialisation program (compile an upcycled "
        "model to derive its weights from a dense checkpoint)");
  return guardAllocation("of the checkpoint", [&] {
    return load(model, dir, /*derive=*/true, ExpertShare());
  });
}

void Weights::own(std::vector<uint8_t> storage) {
  owner_.push_back(int64_t(owned_.size()));
  owned_.push_back(std::move(storage));
  pointers_.push_back(owned_.back().data());
}

absl::StatusOr<Weights> Weights::initialise(const fb::Model &model,
                                            uint64_t seed, ExpertShare share) {
  return guardAllocation("to initialise",
                         [&] { return draw(model, seed, share); });
}

absl::StatusOr<Weights> Weights::load(const fb::Model &model,
                                      const std::string &dir, bool derive,
                                      ExpertShare share) {
  absl::StatusOr<HfCheckpoint> opened = HfCheckpoint::open(dir);
  if (!opened.ok())
    return opened.status();
  Weights weights;
  weights.checkpoint_ = std::make_shared<HfCheckpoint>(std::move(*opened));
  const HfCheckpoint &checkpoint = *weights.checkpoint_;
  std::set<std::string> used;
  // Parameters the initialisation program writes, and the tensors it reads.
  std::set<int64_t> derived;
  if (derive) {
    for (const fb::Kernel *kernel : *model.initialize()->kernels())
      if (kernel->op() == fb::OpKind::WriteParam && kernel->int_attrs() &&
          kernel->int_attrs()->size() == 1)
        derived.insert(kernel->int_attrs()->Get(0));
    if (model.sources())
      for (const flatbuffers::String *name : *model.sources()) {
        if (!checkpoint.find(name->string_view()))
          return absl::NotFoundError(absl::StrCat(
              dir, ": tensor '", name->str(),
              "', a source of the initialisation program, is missing: "
              "--init-from needs the dense checkpoint the model was "
              "upcycled from"));
        used.insert(name->str());
      }
  }

  // The checkpoint tensor `name`, checked against the shape the model needs.
  auto lookup = [&](const std::string &name, const std::vector<int64_t> &shape)
      -> absl::StatusOr<const TensorView *> {
    const TensorView *tensor = checkpoint.find(name);
    if (!tensor)
      return absl::NotFoundError(
          absl::StrCat(dir, ": tensor '", name,
                       "' is missing from the checkpoint (the model needs ",
                       shapeString(shape), ")"));
    used.insert(name);
    if (tensor->shape != shape)
      return absl::InvalidArgumentError(absl::StrCat(
          checkpoint.describe(name), ": tensor '", name, "' has shape ",
          shapeString(tensor->shape), " but the model needs ",
          shapeString(shape)));
    if (!isFloat(tensor->dtype))
      return absl::InvalidArgumentError(
          absl::StrCat(checkpoint.describe(name), ": tensor '", name,
                       "' has dtype ", dtypeName(tensor->dtype),
                       "; expected F32, BF16 or F16"));
    return tensor;
  };

  for (size_t index = 0; index < model.params()->size(); ++index) {
    const fb::Param *param = model.params()->Get(index);
    DType type = fromSchema(param->dtype());
    std::vector<int64_t> shape = shapeOf(*param);
    int64_t count = numElements(*param->shape());
    if (derived.count(int64_t(index))) { // written by the program
      weights.own(std::vector<uint8_t>(count * dtypeSize(type)));
      continue;
    }
    std::string name = param->name()->str();
    bool stacked = isStacked(*param);
    int64_t parts = stacked ? shape[0] : 1;
    std::vector<int64_t> partShape(shape.begin() + (stacked ? 1 : 0),
                                   shape.end());
    std::vector<const TensorView *> tensors;
    int64_t first = stacked ? share.index * parts : 0;
    if (stacked) // the other ranks' experts are theirs to bind
      for (int64_t e = 0; e < share.shares * parts; ++e)
        if (e < first || e >= first + parts)
          used.insert(expertName(name, e));
    for (int64_t part = 0; part < parts; ++part) {
      absl::StatusOr<const TensorView *> tensor =
          lookup(stacked ? expertName(name, first + part) : name, partShape);
      if (!tensor.ok())
        return tensor.status();
      tensors.push_back(*tensor);
    }
    // Used in place when nothing needs converting or gathering.
    if (!stacked && tensors[0]->dtype == type) {
      weights.owner_.push_back(-1);
      weights.pointers_.push_back(tensors[0]->data);
      continue;
    }
    std::vector<uint8_t> storage(count * dtypeSize(type));
    int64_t perPart = parts ? count / parts : 0;
    for (int64_t part = 0; part < parts; ++part)
      convertFloats(tensors[part]->data, tensors[part]->dtype,
              storage.data() + part * perPart * dtypeSize(type), type, perPart);
    weights.own(std::move(storage));
  }

  for (const std::string &name : checkpoint.names())
    if (!used.count(name))
      return absl::InvalidArgumentError(
          absl::StrCat(checkpoint.describe(name), ": tensor '", name,
                       "' is not a parameter of the model",
                       derive ? " nor a source of its initialisation" : ""));
  return weights;
}

absl::StatusOr<Weights> Weights::draw(const fb::Model &model, uint64_t seed,
                                      ExpertShare share) {
  Weights weights;
  for (const fb::Param *param : *model.params()) {
    DType type = fromSchema(param->dtype());
    std::vector<int64_t> shape = shapeOf(*param);
    int64_t count = numElements(*param->shape());
    bool stacked = isStacked(*param);
    int64_t parts = stacked ? std::max<int64_t>(shape[0], 1) : 1;
    int64_t perPart = count / parts;
    std::vector<float> values(count);
    const fb::Init &init = *param->init();
    for (int64_t part = 0; part < parts; ++part) {
      float *out = values.data() + part * perPart;
      std::string name =
          stacked ? expertName(param->name()->str(), share.index * parts + part)
                  : param->name()->str();
      if (init.kind() == fb::InitKind::Normal)
        fillNormal(out, perPart, float(init.mean()), float(init.std()), seed,
                   keyOf(name));
      else
        std::fill(out, out + perPart, float(init.value()));
    }
    std::vector<uint8_t> storage(count * dtypeSize(type));
    convertFloats(values.data(), DType::kF32, storage.data(), type, count);
    weights.own(std::move(storage));
  }
  return weights;
}

std::vector<TensorToWrite>
checkpointTensors(const fb::Model &model,
                  const std::vector<const void *> &params, int64_t shares) {
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < model.params()->size(); ++i) {
    const fb::Param &param = *model.params()->Get(i);
    DType type = fromSchema(param.dtype());
    std::vector<int64_t> shape = shapeOf(param);
    if (!isStacked(param)) {
      tensors.push_back({param.name()->str(), type, shape, params[i]});
      continue;
    }
    std::vector<int64_t> expertShape(shape.begin() + 1, shape.end());
    int64_t perExpert = numElements(*param.shape()) / std::max<int64_t>(shape[0], 1);
    for (int64_t e = 0; e < shape[0] * shares; ++e)
      tensors.push_back(
          {expertName(param.name()->str(), e), type, expertShape,
           static_cast<const uint8_t *>(params[i]) +
               e * perExpert * dtypeSize(type)});
  }
  return tensors;
}

absl::StatusOr<int64_t>
gatherWholeParams(const fb::Model &model, comm::Parallelism *parallel,
                  std::vector<const void *> &params, size_t elementBytes,
                  std::vector<std::vector<uint8_t>> &storage) {
  // Only the first expert group's shares are gathered: the other groups
  // hold copies of them.
  if (!parallel || parallel->single() ||
      parallel->rank() >= parallel->expertParallel)
    return 1;
  for (size_t i = 0; i < params.size(); ++i) {
    const fb::Param &param = *model.params()->Get(i);
    if (!isStacked(param))
      continue;
    size_t element =
        elementBytes ? elementBytes : dtypeSize(fromSchema(param.dtype()));
    int64_t bytes = numElements(*param.shape()) * int64_t(element);
    absl::StatusOr<std::vector<uint8_t>> all =
        comm::gatherOnFirst(*parallel->experts, params[i], bytes);
    if (!all.ok())
      return all.status();
    if (parallel->rank() != 0)
      continue;
    storage.push_back(std::move(*all));
    params[i] = storage.back().data();
  }
  return parallel->rank() == 0 ? int64_t(parallel->expertParallel) : 1;
}

absl::Status Weights::save(const fb::Model &model, const std::string &dir,
                           uint64_t maxShardBytes,
                           comm::Parallelism *parallel) const {
  std::vector<const void *> whole = pointers_;
  std::vector<std::vector<uint8_t>> gathered;
  absl::StatusOr<int64_t> shares =
      gatherWholeParams(model, parallel, whole, 0, gathered);
  if (!shares.ok())
    return shares.status();
  if (parallel && parallel->rank() != 0)
    return absl::OkStatus(); // rank 0 writes
  std::vector<TensorToWrite> tensors = checkpointTensors(model, whole, *shares);
  return writeCheckpointDirectory(
      dir, model.config_json() ? model.config_json()->str() : "{}",
      [&](const std::string &staging) {
        return writeWeightShards(staging, tensors, maxShardBytes,
                                 {{"format", "pt"}});
      });
}

} // namespace moert
