//===- Artifact.cpp - load and verify a .moex artifact --------------------===//

#include "runtime/base/ReadFile.h"
#include "runtime/artifact/Artifact.h"

#include "runtime/artifact/Bf16Activations.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <fstream>
#include <iterator>

namespace moert {
namespace {

absl::Status invalid(const std::string &path, const std::string &message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

/// Operand count range of each op (results are checked by the executor).
std::pair<size_t, size_t> operandArity(fb::OpKind op) {
  switch (op) {
  case fb::OpKind::Silu:
  case fb::OpKind::Clamp:
  case fb::OpKind::BiasGrad:
  case fb::OpKind::Slice:
  case fb::OpKind::Scale:
    return {1, 1};
  case fb::OpKind::RouterZLoss:
    return {2, 1u << 16};
  case fb::OpKind::Fill:
    return {0, 0};
  case fb::OpKind::RmsNormGrad:
  case fb::OpKind::SwigluGrad:
  case fb::OpKind::SigmoidGateGrad:
  case fb::OpKind::CrossEntropyGrad:
    return {3, 3};
  case fb::OpKind::RouterGrad:
    return {3, 4};
  case fb::OpKind::AttentionGrad:
  case fb::OpKind::CombineGrad:
    return {4, 4};
  case fb::OpKind::ExpertMlpTrain:
    return {5, 5};
  case fb::OpKind::ExpertMlpGrad:
    return {6, 8};
  case fb::OpKind::LoadBalancingLossGrad:
  case fb::OpKind::RouterZLossGrad:
    return {3, 1u << 16};
  case fb::OpKind::Rope:
    return {1, 2};
  case fb::OpKind::Attention:
  case fb::OpKind::Combine:
    return {3, 3};
  case fb::OpKind::ExpertMlp:
    return {5, 5};
  case fb::OpKind::FusedExperts: // + the labels
  case fb::OpKind::FusedExpertsTrain:
    return {5, 6};
  case fb::OpKind::FusedExpertsGrad: // + logits gradient, labels, hidden x 2
    return {7, 11};
  case fb::OpKind::LoadBalancingLoss:
    return {2, 1u << 16};
  case fb::OpKind::Stack:
    return {1, 1u << 16};
  case fb::OpKind::RandomIndices:
  case fb::OpKind::RandomTensor:
    return {0, 0};
  case fb::OpKind::WriteParam:
    return {1, 1};
  case fb::OpKind::ResampleSlice:
  case fb::OpKind::CachedAttention:
    return {4, 4};
  case fb::OpKind::CacheWrite:
    return {3, 3};
  default:
    return {2, 2};
  }
}

/// The training program maps [ids, labels] to three scalar losses and one
/// gradient per listed parameter, shaped like it.
absl::Status checkTraining(const fb::Model &model, const std::string &path) {
  const fb::Training &training = *model.training();
  const fb::Program &program = *training.program();
  const auto &gradParams = *training.gradient_params();
  if (program.inputs()->size() != 2)
    return invalid(path, "the training program must take ids and labels");
  if (program.outputs()->size() != 3 + gradParams.size())
    return invalid(path, absl::StrCat("the training program has ",
                                      program.outputs()->size(),
                                      " outputs for ", gradParams.size(),
                                      " gradients"));
  for (size_t i = 0; i < 3; ++i) {
    const fb::Value &loss = *model.values()->Get(program.outputs()->Get(i));
    if (loss.dtype() != fb::DType::F32 || numElements(*loss.shape()) != 1)
      return invalid(path, absl::StrCat("training output #", i,
                                        " is not an fp32 scalar loss"));
  }
  for (size_t i = 0; i < gradParams.size(); ++i) {
    int32_t index = gradParams.Get(i);
    if (index < 0 || size_t(index) >= model.params()->size())
      return invalid(path, absl::StrCat("gradient #", i, " names parameter #",
                                        index));
    const fb::Value &grad =
        *model.values()->Get(program.outputs()->Get(3 + i));
    const fb::Param &param = *model.params()->Get(index);
    if (grad.dtype() != fb::DType::F32 ||
        numElements(*grad.shape()) != numElements(*param.shape()))
      return invalid(path, absl::StrCat("the gradient of '",
                                        param.name()->str(),
                                        "' is not fp32 of its shape"));
  }
  return absl::OkStatus();
}

/// prefill maps [ids, positions, last] and decode_step [ids, positions]
/// ([batch, rows] int32 each, last [batch, 1]) to fp32 logits
/// [batch, 1, vocab]; the caches fit in the cache memory.
absl::Status checkGeneration(const fb::Model &model, const std::string &path) {
  const fb::Generation &generation = *model.generation();
  if (generation.cache_bytes() < 0)
    return invalid(path, "the cache size must not be negative");
  auto check = [&](const fb::Program &program, size_t inputs,
                   int64_t rows) -> absl::Status {
    std::string name = program.name()->str();
    if (program.inputs()->size() != inputs || program.outputs()->size() != 1)
      return invalid(path, absl::StrCat("the ", name, " program must take ",
                                        inputs, " inputs and return logits"));
    for (size_t i = 0; i < inputs; ++i) {
      const fb::Value &input = *model.values()->Get(program.inputs()->Get(i));
      int64_t width = i == 2 ? 1 : rows;
      if (input.dtype() != fb::DType::I32 || input.shape()->size() != 2 ||
          input.shape()->Get(0) != model.batch() ||
          input.shape()->Get(1) != width || width < 1 || width > model.seq())
        return invalid(path, absl::StrCat("input #", i, " of ", name,
                                          " is not int32 [batch, ", width,
                                          "] within the capacity"));
    }
    const fb::Value &logits = *model.values()->Get(program.outputs()->Get(0));
    if (logits.dtype() != fb::DType::F32 || logits.shape()->size() != 3 ||
        logits.shape()->Get(0) != model.batch() || logits.shape()->Get(1) != 1)
      return invalid(path, absl::StrCat("the ", name, " program must return "
                                        "fp32 logits [batch, 1, vocab]"));
    return absl::OkStatus();
  };
  const fb::Program &prefill = *generation.prefill();
  if (prefill.inputs()->size() < 1)
    return invalid(path, "the prefill program has no inputs");
  const fb::Value &ids = *model.values()->Get(prefill.inputs()->Get(0));
  int64_t rows = ids.shape()->size() == 2 ? ids.shape()->Get(1) : 0;
  if (auto status = check(prefill, 3, rows); !status.ok())
    return status;
  return check(*generation.decode_step(), 2, 1);
}

using ValueTable = flatbuffers::Vector<flatbuffers::Offset<fb::Value>>;

/// Activations are fp32 or integers, except bf16 ones in the kernel slots
/// that read or write them as bf16 (Bf16Activations.h): a kernel reading
/// floats from a value of half the size would run past it.
absl::Status checkActivationDtypes(const fb::Kernel &kernel,
                                   const ValueTable &values,
                                   const std::string &what,
                                   const std::string &path) {
  struct Slots {
    const flatbuffers::Vector<int32_t> &ids;
    bool (*bf16)(fb::OpKind, size_t);
    const char *name, *access;
  };
  for (const Slots &slots :
       {Slots{*kernel.operands(), readsBf16Activation, "operand", "read"},
        Slots{*kernel.results(), writesBf16Activation, "result", "write"}})
    for (size_t i = 0; i < slots.ids.size(); ++i) {
      int32_t id = slots.ids.Get(i);
      const fb::Value &value = *values.Get(id);
      fb::DType dtype = value.dtype();
      if (value.kind() != fb::ValueKind::Arena || dtype == fb::DType::F32 ||
          dtype == fb::DType::I32 || dtype == fb::DType::I64 ||
          (dtype == fb::DType::BF16 && slots.bf16(kernel.op(), i)))
        continue; // parameters and caches are checked elsewhere
      return invalid(path, absl::StrCat(what, " ", slots.name, " #", i,
                                        " (value #", id, ") is ",
                                        fb::EnumNameDType(dtype),
                                        ", which the kernel does not ",
                                        slots.access));
    }
  return absl::OkStatus();
}

absl::Status checkValue(const fb::Model &model, const fb::Value &value,
                        size_t id, const std::string &path) {
  std::string what = absl::StrCat("value #", id);
  if (value.dtype() > fb::DType::MAX)
    return invalid(path, absl::StrCat(what, " has an unknown dtype"));
  int64_t count = numElements(*value.shape());
  if (count < 0 || count > (int64_t(1) << 50))
    return invalid(path, absl::StrCat(what, " has too many elements"));
  int64_t bytes = count * int64_t(dtypeSize(fromSchema(value.dtype())));
  switch (value.kind()) {
  case fb::ValueKind::Param: {
    if (value.index() < 0 || size_t(value.index()) >= model.params()->size())
      return invalid(path, absl::StrCat(what, " names parameter #",
                                        value.index(), " of ",
                                        model.params()->size()));
    const fb::Param &param = *model.params()->Get(value.index());
    if (param.shape()->size() != value.shape()->size() ||
        !std::equal(param.shape()->begin(), param.shape()->end(),
                    value.shape()->begin()) ||
        param.dtype() != value.dtype())
      return invalid(path, absl::StrCat(what, " disagrees with parameter '",
                                        param.name()->str(), "'"));
    return absl::OkStatus();
  }
  case fb::ValueKind::Source:
    if (!model.sources() || value.index() < 0 ||
        size_t(value.index()) >= model.sources()->size())
      return invalid(path, absl::StrCat(what, " names source tensor #",
                                        value.index()));
    return absl::OkStatus();
  case fb::ValueKind::Input: {
    size_t inputs = 0;
    for (const fb::Program *program : programsOf(model))
      inputs = std::max<size_t>(inputs, program->inputs()->size());
    if (value.index() < 0 || size_t(value.index()) >= inputs)
      return invalid(path, absl::StrCat(what, " names input #", value.index()));
    return absl::OkStatus();
  }
  case fb::ValueKind::Arena:
    if (value.bytes() != bytes || value.offset() < 0 ||
        value.offset() > model.arena_bytes() - value.bytes())
      return invalid(path, absl::StrCat(what, " [", value.offset(), ", +",
                                        value.bytes(),
                                        ") does not fit its shape in the "
                                        "arena of ",
                                        model.arena_bytes(), " bytes"));
    return absl::OkStatus();
  case fb::ValueKind::Cache: {
    int64_t cacheBytes =
        model.generation() ? model.generation()->cache_bytes() : 0;
    if (value.bytes() != bytes || value.offset() < 0 ||
        value.offset() > cacheBytes - value.bytes())
      return invalid(path, absl::StrCat(what, " [", value.offset(), ", +",
                                        value.bytes(),
                                        ") does not fit its shape in the "
                                        "cache memory of ",
                                        cacheBytes, " bytes"));
    return absl::OkStatus();
  }
  }
  return invalid(path, absl::StrCat(what, " has an unknown kind"));
}

/// Whether a vector's 8-byte elements are 8-byte aligned. The FlatBuffers
/// verifier (2.0) checks only the 4-byte length before them, and reading a
/// misaligned int64 is undefined (found by fuzzing).
template <typename T> bool aligned(const flatbuffers::Vector<T> *vector) {
  return !vector || vector->size() == 0 || // empty ones are not padded
         reinterpret_cast<uintptr_t>(vector->data()) % alignof(T) == 0;
}

/// Every [long] and [double] of the model is aligned.
bool vectorsAligned(const fb::Model &model) {
  for (const fb::Param *param : *model.params())
    if (!aligned(param->shape()))
      return false;
  for (const fb::Value *value : *model.values())
    if (!aligned(value->shape()))
      return false;
  for (const fb::Program *program : programsOf(model))
      for (const fb::Kernel *kernel : *program->kernels())
        if (!aligned(kernel->int_attrs()) || !aligned(kernel->float_attrs()))
          return false;
  return true;
}

absl::Status checkModel(const fb::Model &model, const std::string &path) {
  if (model.format_version() != kFormatVersion)
    return invalid(path, absl::StrCat("format version ",
                                      model.format_version(),
                                      " is not the supported version ",
                                      kFormatVersion,
                                      "; recompile the model with this moec"));
  if (model.batch() < 1 || model.seq() < 1 || model.arena_bytes() < 0)
    return invalid(path, "batch, seq and arena size must be positive");
  if (model.ranks() < 1 || model.expert_parallel() < 1 ||
      model.ranks() % model.expert_parallel() != 0)
    return invalid(path, absl::StrCat("field 'ranks' (", model.ranks(),
                                      ") must be a positive multiple of "
                                      "field 'expert_parallel' (",
                                      model.expert_parallel(), ")"));
  if (!vectorsAligned(model))
    return invalid(path, "corrupted artifact (a misaligned vector)");
  for (size_t i = 0; i < model.params()->size(); ++i) {
    const fb::Param &param = *model.params()->Get(i);
    if (param.dtype() > fb::DType::MAX ||
        param.init()->kind() > fb::InitKind::MAX)
      return invalid(path, absl::StrCat("parameter '", param.name()->str(),
                                        "' has an unknown dtype or init"));
    int64_t count = numElements(*param.shape());
    if (count < 0 || count > (int64_t(1) << 50))
      return invalid(path, absl::StrCat("parameter '", param.name()->str(),
                                        "' has a bad shape"));
  }
  const auto &values = *model.values();
  for (size_t i = 0; i < values.size(); ++i)
    if (absl::Status status = checkValue(model, *values.Get(i), i, path);
        !status.ok())
      return status;

  auto checkIds = [&](const flatbuffers::Vector<int32_t> &ids,
                      const std::string &what) -> absl::Status {
    for (int32_t id : ids)
      if (id < 0 || size_t(id) >= values.size())
        return invalid(path, absl::StrCat(what, " names value #", id, " of ",
                                          values.size()));
    return absl::OkStatus();
  };
  auto checkProgram = [&](const fb::Program &program) -> absl::Status {
    if (auto status = checkIds(*program.inputs(), "an input"); !status.ok())
      return status;
    if (auto status = checkIds(*program.outputs(), "an output"); !status.ok())
      return status;
    for (size_t i = 0; i < program.kernels()->size(); ++i) {
      const fb::Kernel &kernel = *program.kernels()->Get(i);
      std::string what =
          absl::StrCat("kernel #", i, " (", kernel.location()->str(), ")");
      if (kernel.op() > fb::OpKind::MAX)
        return invalid(path, absl::StrCat(what, " has an unknown op"));
      auto [least, most] = operandArity(kernel.op());
      if (kernel.operands()->size() < least || kernel.operands()->size() > most)
        return invalid(path, absl::StrCat(what, " has ",
                                          kernel.operands()->size(),
                                          " operands"));
      if (auto status = checkIds(*kernel.operands(), what); !status.ok())
        return status;
      if (auto status = checkIds(*kernel.results(), what); !status.ok())
        return status;
      for (int32_t id : *kernel.results())
        if (values.Get(id)->kind() != fb::ValueKind::Arena)
          return invalid(path, absl::StrCat(what, " writes value #", id,
                                            ", which is not in the arena"));
      if (auto status = checkActivationDtypes(kernel, values, what, path);
          !status.ok())
        return status;
      // Caches are operands of these two only, and nothing else is a cache
      // there: a cache write must not land in the (mapped) weights.
      for (size_t o = 0; o < kernel.operands()->size(); ++o) {
        bool isCache =
            values.Get(kernel.operands()->Get(o))->kind() == fb::ValueKind::Cache;
        bool wantsCache =
            (kernel.op() == fb::OpKind::CacheWrite && o == 0) ||
            (kernel.op() == fb::OpKind::CachedAttention && o >= 2);
        if (isCache != wantsCache)
          return invalid(path, absl::StrCat(what, " operand #", o,
                                            wantsCache ? " is not" : " is",
                                            " a key/value cache"));
      }
    }
    return absl::OkStatus();
  };
  if (!model.forward() && !model.generation())
    return invalid(path, "the artifact has neither a forward program nor "
                         "generation programs");
  for (const fb::Program *program : programsOf(model))
    if (auto status = checkProgram(*program); !status.ok())
      return status;
  if (model.generation())
    if (auto status = checkGeneration(model, path); !status.ok())
      return status;
  if (model.training())
    return checkTraining(model, path);
  return absl::OkStatus();
}
} // namespace

DType fromSchema(fb::DType type) {
  switch (type) {
  case fb::DType::F32:
    return DType::kF32;
  case fb::DType::BF16:
    return DType::kBF16;
  case fb::DType::F16:
    return DType::kF16;
  case fb::DType::I32:
    return DType::kI32;
  case fb::DType::I64:
    return DType::kI64;
  }
  return DType::kF32;
}

fb::DType toSchema(DType type) {
  switch (type) {
  case DType::kF32:
    return fb::DType::F32;
  case DType::kBF16:
    return fb::DType::BF16;
  case DType::kF16:
    return fb::DType::F16;
  case DType::kI32:
    return fb::DType::I32;
  case DType::kI64:
    return fb::DType::I64;
  }
  return fb::DType::F32;
}

std::vector<const fb::Program *> programsOf(const fb::Model &model) {
  std::vector<const fb::Program *> programs;
  for (const fb::Program *program :
       {model.forward(), model.initialize(),
        model.training() ? model.training()->program() : nullptr,
        model.generation() ? model.generation()->prefill() : nullptr,
        model.generation() ? model.generation()->decode_step() : nullptr})
    if (program)
      programs.push_back(program);
  return programs;
}

int64_t numElements(const flatbuffers::Vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(count, d, &count))
      return -1;
  return count;
}

absl::StatusOr<Artifact> Artifact::fromBytes(std::vector<uint8_t> bytes,
                                             const std::string &name) {
  if (bytes.size() < 8 || !fb::ModelBufferHasIdentifier(bytes.data()))
    return invalid(name, "not a .moex artifact (missing the MOEX identifier)");
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return invalid(name, "corrupted artifact: larger than a FlatBuffer can be");
  // Every table takes at least 4 bytes: bounding the tables by the size
  // keeps verification linear without refusing a large, valid model (the
  // default bound of 10^6 refused an upcycling program of many experts).
  flatbuffers::Verifier::Options options;
  options.max_tables = flatbuffers::uoffset_t(bytes.size() / 4 + 1);
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), options);
  if (!fb::VerifyModelBuffer(verifier))
    return invalid(name, "corrupted artifact: the FlatBuffers verifier "
                         "rejected it (truncated or damaged file)");
  Artifact artifact(std::move(bytes), name);
  if (absl::Status status = checkModel(artifact.model(), name); !status.ok())
    return status;
  return artifact;
}

absl::StatusOr<Artifact> Artifact::load(const std::string &path) {
  absl::StatusOr<std::string> content = readFile(path, "the artifact");
  if (!content.ok())
    return content.status();
  return fromBytes(std::vector<uint8_t>(content->begin(), content->end()),
                   path);
}

} // namespace moert
