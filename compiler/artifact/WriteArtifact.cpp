//===- WriteArtifact.cpp - serialise a compiled model to .moex ------------===//
//
// One walk over @forward: parameters become the parameter table, the token
// ids the program input, every other op one kernel whose operands and
// results index the value table. The buffer plan gives arena offsets.
//
//===----------------------------------------------------------------------===//

#include "compiler/artifact/WriteArtifact.h"

#include "compiler/artifact/BufferPlan.h"
#include "compiler/artifact/KernelChoice.h"
#include "compiler/support/ToolOutput.h"
#include "dialects/moe/MoeOps.h"
#include "runtime/artifact/Artifact.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::moe;
namespace fb = moert::fb;

namespace {
FailureOr<fb::DType> dtypeOf(Type type, Location loc) {
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return fb::DType::F32;
  if (element.isBF16())
    return fb::DType::BF16;
  if (element.isF16())
    return fb::DType::F16;
  if (element.isInteger(32))
    return fb::DType::I32;
  if (element.isInteger(64))
    return fb::DType::I64;
  return emitError(loc) << "no artifact dtype for " << element;
}

/// Activations are stored in fp32 whatever their IR float type, apart from
/// those ActivationStorage picks.
fb::DType activationDtype(fb::DType dtype) {
  return dtype == fb::DType::BF16 || dtype == fb::DType::F16 ? fb::DType::F32
                                                             : dtype;
}

/// "moe.linear at model.layers.0.self_attn (config.json:1:1)".
std::string describeLocation(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << op->getName();
  if (auto name = llvm::dyn_cast<NameLoc>(op->getLoc()))
    os << " at " << name.getName().getValue();
  if (auto file = op->getLoc()->findInstanceOf<FileLineColLoc>())
    os << " (" << file.getFilename().getValue() << ":" << file.getLine()
       << ":" << file.getColumn() << ")";
  return text;
}

/// The largest artifact written, well inside FlatBuffers' 2 GiB.
constexpr size_t kMaxArtifactBytes = size_t(1) << 30;

/// An integer attribute moe-expert-parallel set on the module (1 if absent).
int32_t moduleInt(ModuleOp module, StringRef name) {
  auto attr = module->getAttrOfType<IntegerAttr>(name);
  return attr ? int32_t(attr.getInt()) : 1;
}

std::string configJson(ModuleOp module) {
  auto config = module->getAttrOfType<DictionaryAttr>("moe.hf_config");
  if (!config)
    return "{}";
  // Written as a Hugging Face config.json, so that a checkpoint saved by the
  // runtime loads in transformers and in moec alike.
  llvm::json::Object object{{"hidden_act", "silu"}};
  for (NamedAttribute field : config) {
    StringRef key = field.getName().getValue();
    Attribute value = field.getValue();
    if (key == "architecture") {
      StringRef name = llvm::cast<StringAttr>(value).getValue();
      object["architectures"] = llvm::json::Array{name};
      // Modules written before model_type was recorded.
      if (!config.get("model_type"))
        object["model_type"] = name == "MixtralForCausalLM" ? "mixtral" : "llama";
    } else if (auto i = llvm::dyn_cast<IntegerAttr>(value))
      object[key] = i.getType().isInteger(1) ? llvm::json::Value(bool(i.getInt()))
                                             : llvm::json::Value(i.getInt());
    else if (auto b = llvm::dyn_cast<BoolAttr>(value))
      object[key] = b.getValue();
    else if (auto f = llvm::dyn_cast<FloatAttr>(value))
      object[key] = f.getValueAsDouble();
    else if (auto s = llvm::dyn_cast<StringAttr>(value))
      object[key] = s.getValue();
    else if (auto list = llvm::dyn_cast<ArrayAttr>(value)) {
      llvm::json::Array items;
      for (Attribute item : list)
        if (auto i = llvm::dyn_cast<IntegerAttr>(item))
          items.push_back(i.getInt());
      object[key] = std::move(items);
    }
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(object));
  return text;
}
} // namespace

namespace {
/// Builds the artifact: the parameter table, then one program per function
/// over a shared value table.
class ArtifactBuilder {
public:
  ArtifactBuilder(ModuleOp module, ActivationStorage storage)
      : module(module), storage(storage), builder(1 << 16) {}

  LogicalResult addParams(ArtifactSummary &summary);
  /// Writes `program.function` as a program, counting the kernels chosen
  /// into `program.kernels`. Block arguments become program inputs
  /// (forward) or source tensors named by their `moe.source` attribute
  /// (initialize).
  FailureOr<flatbuffers::Offset<fb::Program>>
  addProgram(ProgramSummary &program, bool sourced);
  /// The parameter index of each `moe.gradient` result of a training step
  /// (which follow its three losses).
  FailureOr<std::vector<int32_t>> gradientParams(func::FuncOp train);

  ModuleOp module;
  ActivationStorage storage;
  flatbuffers::FlatBufferBuilder builder;
  /// The caches' memory, placed one after another as programs name them.
  int64_t cacheBytes = 0;
  llvm::DenseMap<StringAttr, int32_t> paramIndex;
  std::vector<flatbuffers::Offset<fb::Param>> params;
  std::vector<flatbuffers::Offset<fb::Value>> values;
  std::vector<std::string> sources;
  int64_t kernels = 0;

private:
  LogicalResult addValue(Value value, fb::ValueKind kind, int32_t index,
                         BufferSlot slot);
  /// The value of the cache `name`, added on first use.
  FailureOr<int32_t> cacheValue(Operation *user, FlatSymbolRefAttr name);
  /// The kernel operands of `op`: its operands, and the caches it names.
  FailureOr<std::vector<int32_t>> operandIds(Operation &op);
  llvm::DenseMap<Value, int32_t> valueIds;
  llvm::DenseMap<StringAttr, int32_t> cacheIds;
};

LogicalResult ArtifactBuilder::addParams(ArtifactSummary &summary) {
  for (ParamOp param : module.getOps<ParamOp>()) {
    FailureOr<fb::DType> dtype = dtypeOf(param.getType(), param.getLoc());
    if (failed(dtype))
      return failure();
    auto shape = param.getTensorType().getShape();
    flatbuffers::Offset<fb::Init> init;
    if (auto normal = llvm::dyn_cast<NormalInitAttr>(param.getInit()))
      init = fb::CreateInit(builder, fb::InitKind::Normal,
                            normal.getMean().convertToDouble(),
                            normal.getStd().convertToDouble(), 0.0);
    else
      init = fb::CreateInit(
          builder, fb::InitKind::Constant, 0.0, 0.0,
          llvm::cast<ConstantInitAttr>(param.getInit()).getValue().convertToDouble());
    paramIndex[param.getSymNameAttr()] = params.size();
    params.push_back(fb::CreateParam(
        builder, builder.CreateString(param.getSymName().str()), *dtype,
        builder.CreateVector(std::vector<int64_t>(shape.begin(), shape.end())),
        init));
    summary.params += param.getTensorType().getNumElements();
    summary.paramBytes +=
        param.getTensorType().getNumElements() *
        param.getTensorType().getElementType().getIntOrFloatBitWidth() / 8;
  }
  return success();
}

FailureOr<std::vector<int32_t>>
ArtifactBuilder::gradientParams(func::FuncOp train) {
  std::vector<int32_t> indices;
  for (unsigned i = 3; i < train.getNumResults(); ++i) {
    auto param = train.getResultAttrOfType<FlatSymbolRefAttr>(i, "moe.gradient");
    if (!param || !paramIndex.count(param.getAttr()))
      return train.emitError() << "result #" << i
                               << " is not tagged moe.gradient with a parameter";
    indices.push_back(paramIndex.lookup(param.getAttr()));
  }
  if (train.getNumArguments() != 2 || train.getNumResults() < 3)
    return train.emitError()
           << "@train_step must map ids and labels to three losses and gradients";
  return indices;
}

LogicalResult ArtifactBuilder::addValue(Value value, fb::ValueKind kind,
                                        int32_t index, BufferSlot slot) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  FailureOr<fb::DType> dtype = dtypeOf(type, value.getLoc());
  if (failed(dtype))
    return failure();
  // Activations and source tensors are fp32 in the runtime, except the
  // activations whose every reader rounds them to bf16.
  if (kind == fb::ValueKind::Arena && storage.storedAsBf16(value))
    *dtype = fb::DType::BF16;
  else if (kind == fb::ValueKind::Arena || kind == fb::ValueKind::Source)
    *dtype = activationDtype(*dtype);
  auto shape = type.getShape();
  valueIds[value] = values.size();
  values.push_back(fb::CreateValue(
      builder, kind, *dtype,
      builder.CreateVector(std::vector<int64_t>(shape.begin(), shape.end())),
      index, slot.offset, slot.bytes));
  return success();
}

FailureOr<int32_t> ArtifactBuilder::cacheValue(Operation *user,
                                               FlatSymbolRefAttr name) {
  if (auto known = cacheIds.find(name.getAttr()); known != cacheIds.end())
    return known->second;
  auto cache = module.lookupSymbol<KVCacheOp>(name);
  if (!cache)
    return user->emitOpError() << name << " does not name a moe.kv_cache";
  RankedTensorType type = cache.getTensorType();
  FailureOr<fb::DType> dtype = dtypeOf(type, cache.getLoc());
  if (failed(dtype))
    return failure();
  // Cached rows are activations, stored in fp32 like the others.
  int64_t bytes = type.getNumElements() * storageBytes(type.getElementType());
  auto shape = type.getShape();
  int32_t id = values.size();
  values.push_back(fb::CreateValue(
      builder, fb::ValueKind::Cache, activationDtype(*dtype),
      builder.CreateVector(std::vector<int64_t>(shape.begin(), shape.end())),
      0, cacheBytes, bytes));
  cacheBytes += arenaBytesOf(bytes);
  cacheIds[name.getAttr()] = id;
  return id;
}

FailureOr<std::vector<int32_t>> ArtifactBuilder::operandIds(Operation &op) {
  std::vector<int32_t> operands;
  auto addCache = [&](FlatSymbolRefAttr name) {
    FailureOr<int32_t> id = cacheValue(&op, name);
    if (succeeded(id))
      operands.push_back(*id);
    return id;
  };
  if (auto write = dyn_cast<CacheWriteOp>(op))
    if (failed(addCache(write.getCacheAttr())))
      return failure();
  for (Value operand : op.getOperands()) {
    if (!valueIds.count(operand))
      return op.emitOpError() << "reads a value the artifact cannot hold";
    operands.push_back(valueIds[operand]);
  }
  if (auto attention = dyn_cast<CachedAttentionOp>(op))
    if (failed(addCache(attention.getKeyCacheAttr())) ||
        failed(addCache(attention.getValueCacheAttr())))
      return failure();
  return operands;
}

FailureOr<flatbuffers::Offset<fb::Program>>
ArtifactBuilder::addProgram(ProgramSummary &program, bool sourced) {
  func::FuncOp function = program.function;
  std::vector<int32_t> inputs;
  for (BlockArgument argument : function.getArguments()) {
    if (sourced) {
      auto name = function.getArgAttrOfType<StringAttr>(argument.getArgNumber(),
                                                        "moe.source");
      if (!name)
        return function.emitError()
               << "argument #" << argument.getArgNumber()
               << " has no moe.source naming its checkpoint tensor";
      if (failed(addValue(argument, fb::ValueKind::Source, sources.size(), {})))
        return failure();
      sources.push_back(name.str());
    } else if (failed(addValue(argument, fb::ValueKind::Input, inputs.size(),
                               {}))) {
      return failure();
    }
    inputs.push_back(valueIds[argument]);
  }

  std::vector<flatbuffers::Offset<fb::Kernel>> kernelList;
  std::vector<int32_t> outputs;
  for (Operation &op : function.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value result : ret.getOperands())
        outputs.push_back(valueIds.lookup(result));
      continue;
    }
    if (auto read = dyn_cast<ReadParamOp>(op)) {
      if (failed(addValue(read, fb::ValueKind::Param,
                          paramIndex.lookup(read.getNameAttr().getAttr()), {})))
        return failure();
      continue;
    }
    // FlatBuffers cannot address more than 2 GiB; stop well before.
    if (builder.GetSize() > kMaxArtifactBytes)
      return op.emitError()
             << "the artifact would exceed " << (kMaxArtifactBytes >> 30)
             << " GiB at this op (" << kernels + kernelList.size()
             << " kernels so far): the model has too many layers or experts "
                "for one artifact";
    std::optional<KernelInfo> info = kernelChoice(&op);
    if (!info)
      return op.emitOpError() << "has no runtime kernel";
    if (auto write = dyn_cast<WriteParamOp>(op))
      info->ints = {paramIndex.lookup(write.getNameAttr().getAttr())};
    FailureOr<std::vector<int32_t>> operands = operandIds(op);
    if (failed(operands))
      return failure();
    std::vector<int32_t> results;
    for (Value result : op.getResults()) {
      if (failed(addValue(result, fb::ValueKind::Arena, 0,
                          program.plan.slots.lookup(result))))
        return failure();
      results.push_back(valueIds[result]);
    }
    kernelList.push_back(fb::CreateKernel(
        builder, info->op, builder.CreateString(info->name),
        builder.CreateVector(*operands), builder.CreateVector(results),
        builder.CreateVector(info->ints), builder.CreateVector(info->floats),
        builder.CreateString(describeLocation(&op)),
        info->stream.empty() ? 0 : builder.CreateString(info->stream)));
    auto counted = llvm::find_if(program.kernels, [&](auto &kernel) {
      return kernel.first == info->name;
    });
    if (counted == program.kernels.end())
      program.kernels.emplace_back(info->name, 1);
    else
      ++counted->second;
  }
  kernels += kernelList.size();
  return fb::CreateProgram(builder, builder.CreateString(function.getName().str()),
                           builder.CreateVector(inputs),
                           builder.CreateVector(outputs),
                           builder.CreateVector(kernelList));
}
} // namespace

FailureOr<ArtifactSummary> moe::writeArtifact(ModuleOp module, StringRef path,
                                              ActivationStorage storage) {
  auto function = [&](StringRef name) {
    return module.lookupSymbol<func::FuncOp>(name);
  };
  func::FuncOp forward = function("forward"), prefill = function("prefill"),
               decode = function("decode_step"),
               initialize = function("initialize"),
               train = function("train_step");
  if (!forward && !(prefill && decode))
    return module.emitError()
           << "no function @forward (or @prefill and @decode_step) to compile";

  ArtifactSummary summary;
  ArtifactBuilder artifact(module, storage);
  if (failed(artifact.addParams(summary)))
    return failure();
  // The programs run at different times and share one arena.
  int64_t arenaBytes = 0;
  auto addProgram = [&](func::FuncOp function, bool sourced)
      -> FailureOr<flatbuffers::Offset<fb::Program>> {
    if (!function)
      return flatbuffers::Offset<fb::Program>();
    FailureOr<BufferPlan> plan = planBuffers(function, storage);
    if (failed(plan))
      return failure();
    arenaBytes = std::max(arenaBytes, plan->arenaBytes);
    summary.programs.push_back({function, std::move(*plan), {}});
    return artifact.addProgram(summary.programs.back(), sourced);
  };
  auto program = addProgram(forward, /*sourced=*/false);
  auto prefillProgram = addProgram(prefill, false);
  auto decodeProgram = addProgram(decode, false);
  auto initProgram = addProgram(initialize, /*sourced=*/true);
  auto trainProgram = addProgram(train, false);
  if (failed(program) || failed(prefillProgram) || failed(decodeProgram) ||
      failed(initProgram) || failed(trainProgram))
    return failure();
  for (ProgramSummary &written : summary.programs) {
    const BufferPlan &plan = written.plan;
    StringRef name = written.function.getName();
    if (name == "initialize") {
      summary.initArenaBytes = plan.arenaBytes;
    } else if (name == "train_step") {
      summary.trainArenaBytes = plan.arenaBytes;
      summary.trainUnplannedBytes = plan.unplannedBytes;
      summary.trainActivationBytes = plan.activationBytes;
      summary.trainResultBytes = plan.resultBytes;
    } else {
      summary.arenaBytes = std::max(summary.arenaBytes, plan.arenaBytes);
      summary.unplannedBytes = std::max(summary.unplannedBytes,
                                        plan.unplannedBytes);
    }
  }
  flatbuffers::FlatBufferBuilder &builder = artifact.builder;
  flatbuffers::Offset<fb::Training> training;
  if (train) {
    FailureOr<std::vector<int32_t>> gradParams = artifact.gradientParams(train);
    if (failed(gradParams))
      return failure();
    auto coef = [&](StringRef name) {
      auto attr = train->getAttrOfType<FloatAttr>(name);
      return attr ? attr.getValueAsDouble() : 0.0;
    };
    training = fb::CreateTraining(builder, *trainProgram,
                                  builder.CreateVector(*gradParams),
                                  coef("moe.aux_loss_coef"),
                                  coef("moe.z_loss_coef"));
  }
  flatbuffers::Offset<fb::Generation> generation;
  int64_t batch = 0, seq = 0;
  if (forward) {
    auto tokens =
        llvm::cast<RankedTensorType>(forward.getArgument(0).getType());
    batch = tokens.getDimSize(0);
    seq = tokens.getDimSize(1);
  } else {
    auto tokens =
        llvm::cast<RankedTensorType>(prefill.getArgument(0).getType());
    batch = tokens.getDimSize(0);
    seq = tokens.getDimSize(1);
    for (KVCacheOp cache : module.getOps<KVCacheOp>())
      seq = std::max(seq, cache.getTensorType().getDimSize(1));
    summary.cacheBytes = artifact.cacheBytes;
    generation = fb::CreateGeneration(builder, *prefillProgram, *decodeProgram,
                                      artifact.cacheBytes);
  }
  summary.kernels = artifact.kernels;

  std::vector<flatbuffers::Offset<flatbuffers::String>> sourceNames;
  for (const std::string &name : artifact.sources)
    sourceNames.push_back(builder.CreateString(name));
  auto model = fb::CreateModel(
      builder, moert::kFormatVersion, builder.CreateString("moec"), batch, seq,
      builder.CreateString(configJson(module)),
      builder.CreateVector(artifact.params), builder.CreateVector(artifact.values),
      arenaBytes, *program, *initProgram,
      initialize ? builder.CreateVector(sourceNames) : 0, training, generation,
      moduleInt(module, "moe.ranks"), moduleInt(module, "moe.expert_parallel"));
  fb::FinishModelBuffer(builder, model);

  llvm::Error written = writeOutputFile(
      path, llvm::StringRef(
                reinterpret_cast<const char *>(builder.GetBufferPointer()),
                builder.GetSize()));
  if (written)
    return module.emitError() << llvm::toString(std::move(written));
  return summary;
}
