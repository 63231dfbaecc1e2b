//===- HFConfig.cpp - a Hugging Face config.json, validated ---------------===//
//
// Defaults follow transformers' config class of each architecture, so a
// config that loads in transformers means the same model here. Fields that would
// change the computation in ways moec does not implement (rope scaling,
// biases, sliding windows, other activations) are rejected, not ignored.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/HFConfig.h"

#include "runtime/base/JsonDepth.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::moe;
namespace json = llvm::json;

namespace {
/// Largest size accepted for one dimension, and for counts of layers and
/// experts: far above any real model, far below int64 overflow in products.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxCount = int64_t(1) << 16;

/// An architecture and what its transformers config class defaults to.
struct ArchitectureInfo {
  StringRef name;
  StringRef modelType;
  Architecture architecture;
  bool moe;
  int64_t maxPositions;
  double rmsNormEps;
  double ropeTheta;
  double auxLossCoef;
  int64_t numExperts;
  int64_t expertsPerToken;
  bool qkvBias;
  QKNorm qkNorm;
  /// Sliding windows are switched on by `use_sliding_window` (Qwen), so a
  /// `sliding_window` size alone means nothing.
  bool windowSwitch;
};
constexpr ArchitectureInfo kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Architecture::Llama, false, 2048, 1e-6, 1e4,
     0, 0, 0, false, QKNorm::None, false},
    {"MixtralForCausalLM", "mixtral", Architecture::Mixtral, true, 4096 * 32,
     1e-5, 1e6, 0.001, 8, 2, false, QKNorm::None, false},
    {"Qwen2ForCausalLM", "qwen2", Architecture::Qwen2, false, 32768, 1e-6, 1e4,
     0, 0, 0, true, QKNorm::None, true},
    {"Qwen3ForCausalLM", "qwen3", Architecture::Qwen3, false, 32768, 1e-6, 1e4,
     0, 0, 0, false, QKNorm::PerHead, true},
    {"Qwen2MoeForCausalLM", "qwen2_moe", Architecture::Qwen2Moe, true, 32768,
     1e-6, 1e4, 0.001, 60, 4, true, QKNorm::None, true},
    {"Qwen3MoeForCausalLM", "qwen3_moe", Architecture::Qwen3Moe, true, 32768,
     1e-6, 1e4, 0.001, 128, 8, false, QKNorm::PerHead, true},
    {"OlmoeForCausalLM", "olmoe", Architecture::Olmoe, true, 4096, 1e-5, 1e4,
     0.01, 64, 8, false, QKNorm::Whole, false},
};

/// Stores a successfully read field; false (the error already reported)
/// otherwise, so that reads chain with &&.
template <typename T, typename Field> bool read(FailureOr<T> result, Field &field) {
  if (failed(result))
    return false;
  field = *result;
  return true;
}

/// The value as an integer when it is one. llvm::json's getAsInteger casts a
/// double to int64 before its range check, which is undefined for doubles
/// beyond int64 (fuzzing found `9223372036854775758.0`); such numbers are
/// far out of every field's range anyway, so they are refused here first.
std::optional<int64_t> integerOf(const json::Value &value) {
  std::optional<double> number = value.getAsNumber();
  if (number && !(std::abs(*number) < 0x1p62))
    return std::nullopt;
  return value.getAsInteger();
}

/// Reads typed, validated fields of one parsed config and reports errors at
/// the line and column where the field appears in the file.
class ConfigReader {
public:
  ConfigReader(StringRef path, StringRef text, const json::Object &object,
               MLIRContext *context)
      : path(path), text(text), object(object), context(context) {}

  Location locationOf(StringRef key) const {
    std::string quoted = ("\"" + key + "\"").str();
    size_t at = text.find(quoted);
    // A key mentioned inside a string value is rare enough in configs to
    // accept; a missing key points at the start of the file.
    if (at == StringRef::npos)
      at = 0;
    StringRef before = text.take_front(at);
    unsigned line = 1 + before.count('\n');
    unsigned column = 1 + at - (before.rfind('\n') + 1);
    return FileLineColLoc::get(context, path, line, column);
  }

  InFlightDiagnostic error(StringRef key) const {
    return emitError(locationOf(key)) << "field '" << key << "': ";
  }

  /// The field, or nullptr when absent or JSON null.
  const json::Value *find(StringRef key) const {
    const json::Value *value = object.get(key);
    return value && value->kind() != json::Value::Null ? value : nullptr;
  }

  FailureOr<int64_t> size(StringRef key, std::optional<int64_t> fallback,
                          int64_t maximum = kMaxDim) const {
    const json::Value *value = find(key);
    if (!value) {
      if (fallback)
        return *fallback;
      return error(key) << "required field is missing";
    }
    std::optional<int64_t> number = integerOf(*value);
    if (!number) {
      if (std::optional<double> big = value->getAsNumber(); big && *big == std::trunc(*big))
        return error(key) << "must be in [1, " << maximum << "], got " << *big;
      return error(key) << "expected an integer, got " << describe(*value);
    }
    if (*number <= 0 || *number > maximum)
      return error(key) << "must be in [1, " << maximum << "], got " << *number;
    return *number;
  }

  /// A finite number > `exclusiveMinimum` (or >= 0 when `allowZero`).
  FailureOr<double> number(StringRef key, double fallback,
                           bool allowZero = false) const {
    const json::Value *value = find(key);
    if (!value)
      return fallback;
    std::optional<double> number = value->getAsNumber();
    if (!number)
      return error(key) << "expected a number, got " << describe(*value);
    if (!std::isfinite(*number) || *number < 0 || (!allowZero && *number == 0))
      return error(key) << "must be " << (allowZero ? ">= 0" : "> 0")
                        << ", got " << *number;
    return *number;
  }

  FailureOr<bool> boolean(StringRef key, bool fallback) const {
    const json::Value *value = find(key);
    if (!value)
      return fallback;
    std::optional<bool> flag = value->getAsBoolean();
    if (!flag)
      return error(key) << "expected true or false, got " << describe(*value);
    return *flag;
  }

  FailureOr<std::optional<StringRef>> string(StringRef key) const {
    const json::Value *value = find(key);
    if (!value)
      return std::optional<StringRef>();
    std::optional<StringRef> string = value->getAsString();
    if (!string)
      return error(key) << "expected a string, got " << describe(*value);
    return string;
  }

  static std::string describe(const json::Value &value) {
    switch (value.kind()) {
    case json::Value::Null:
      return "null";
    case json::Value::Boolean:
      return "a boolean";
    case json::Value::Number:
      return "a number";
    case json::Value::String:
      return "a string";
    case json::Value::Array:
      return "an array";
    case json::Value::Object:
      return "an object";
    }
    return "a value";
  }

private:
  StringRef path;
  StringRef text;
  const json::Object &object;
  MLIRContext *context;
};

/// Picks the architecture from `architectures[0]`, else from `model_type`.
FailureOr<const ArchitectureInfo *>
readArchitecture(const ConfigReader &reader) {
  auto unsupported = [&](StringRef key, StringRef name) {
    return reader.error(key) << "unsupported architecture '" << name
                             << "'; supported: " << supportedArchitectures();
  };
  if (const json::Value *list = reader.find("architectures")) {
    const json::Array *names = list->getAsArray();
    if (!names || names->empty() || !(*names)[0].getAsString())
      return reader.error("architectures")
                 << "expected a non-empty array of strings, got "
                 << ConfigReader::describe(*list);
    StringRef name = *(*names)[0].getAsString();
    for (const ArchitectureInfo &info : kArchitectures)
      if (info.name == name)
        return &info;
    return unsupported("architectures", name);
  }
  FailureOr<std::optional<StringRef>> modelType = reader.string("model_type");
  if (failed(modelType))
    return failure();
  if (!*modelType)
    return reader.error("architectures")
               << "required field is missing (and there is no model_type)";
  for (const ArchitectureInfo &info : kArchitectures)
    if (info.modelType == **modelType)
      return &info;
  return unsupported("model_type", **modelType);
}

/// Rejects fields that would change the model in ways moec does not
/// implement, so that a config is never silently misread.
LogicalResult rejectUnsupportedFeatures(const ConfigReader &reader,
                                        const ArchitectureInfo &info) {
  FailureOr<std::optional<StringRef>> act = reader.string("hidden_act");
  if (failed(act))
    return failure();
  if (*act && **act != "silu")
    return reader.error("hidden_act")
           << "only \"silu\" (SwiGLU) is supported, got \"" << **act << "\"";
  if (reader.find("rope_scaling"))
    return reader.error("rope_scaling")
           << "rope scaling is not supported; it must be null or absent";
  if (info.windowSwitch) {
    FailureOr<bool> window = reader.boolean("use_sliding_window", false);
    if (failed(window))
      return failure();
    if (*window)
      return reader.error("use_sliding_window")
             << "sliding-window attention is not supported; it must be false";
    if (const json::Value *types = reader.find("layer_types")) {
      const json::Array *list = types->getAsArray();
      for (const json::Value &type : list ? *list : json::Array())
        if (type.getAsString() != std::optional<StringRef>("full_attention"))
          return reader.error("layer_types")
                 << "only \"full_attention\" layers are supported";
    }
  } else if (reader.find("sliding_window")) {
    return reader.error("sliding_window")
           << "sliding-window attention is not supported; it must be null or "
              "absent";
  }
  // Qwen2's q/k/v biases are built in, whatever attention_bias says.
  SmallVector<StringRef, 2> biasKeys = {"mlp_bias"};
  if (!info.qkvBias)
    biasKeys.push_back("attention_bias");
  for (StringRef key : biasKeys) {
    FailureOr<bool> bias = reader.boolean(key, false);
    if (failed(bias))
      return failure();
    if (*bias)
      return reader.error(key) << "biases are not supported in "
                               << info.name << "; it must be false";
  }
  return success();
}

LogicalResult readDtype(const ConfigReader &reader, HFConfig &config) {
  // transformers >= 4.56 writes `dtype`; older versions `torch_dtype`.
  StringRef key = reader.find("torch_dtype") ? "torch_dtype" : "dtype";
  FailureOr<std::optional<StringRef>> dtype = reader.string(key);
  if (failed(dtype))
    return failure();
  config.torchDtype = dtype->value_or("float32").str();
  if (config.torchDtype != "float32" && config.torchDtype != "bfloat16" &&
      config.torchDtype != "float16")
    return reader.error(key) << "expected \"float32\", \"bfloat16\" or "
                                "\"float16\", got \""
                             << config.torchDtype << "\"";
  return success();
}

/// Turns llvm::json's "[line:col, byte=N]: message" into a located error.
LogicalResult reportJsonError(StringRef path, llvm::Error error,
                              MLIRContext *context) {
  std::string message = llvm::toString(std::move(error));
  unsigned line = 0, column = 0, byte = 0;
  int consumed = 0;
  if (std::sscanf(message.c_str(), "[%u:%u, byte=%u]: %n", &line, &column,
                  &byte, &consumed) == 3 &&
      consumed > 0)
    message = message.substr(consumed);
  return emitError(FileLineColLoc::get(context, path, line, column))
         << "malformed JSON: " << message;
}
/// Refuses a config whose parameters number more than kMaxParameters: each
/// field is bounded, but their products wrapped around 64 bits, and moec
/// stats printed wrong counts. Names the field whose term crosses the bound.
LogicalResult checkParameterCount(const ConfigReader &reader,
                                  const HFConfig &config) {
  constexpr int64_t kMaxParameters = int64_t(1) << 48;
  int64_t total = 0;
  auto add = [&](StringRef field, int64_t times,
                 std::initializer_list<int64_t> shape) -> LogicalResult {
    int64_t count = times;
    bool overflow = false;
    for (int64_t extent : shape)
      overflow |= __builtin_mul_overflow(count, extent, &count);
    overflow |= __builtin_add_overflow(total, count, &total);
    if (overflow || total > kMaxParameters)
      return reader.error(field) << "the model would have more than 2^48 "
                                    "parameters, beyond any machine";
    return success();
  };
  int64_t d = config.hiddenSize, layers = config.numLayers;
  int64_t attentionWidth = config.numHeads * config.headDim;
  int64_t kvWidth = config.numKvHeads * config.headDim;
  // A bound: every layer counted with the dense FFN and the experts.
  return success(
      succeeded(add("vocab_size", config.tieWordEmbeddings ? 1 : 2,
                    {config.vocabSize, d})) &&
      succeeded(add("num_attention_heads", layers, {2, attentionWidth, d})) &&
      succeeded(add("num_key_value_heads", layers, {2, kvWidth, d})) &&
      succeeded(add("intermediate_size", layers,
                    {3, config.intermediateSize, d})) &&
      succeeded(add(config.expertCountKey(), layers,
                    {config.numExperts, 3, config.expertIntermediateSize, d})) &&
      succeeded(add("shared_expert_intermediate_size", layers,
                    {3, config.sharedExpertIntermediateSize, d})));
}
/// The expert counts and sizes, routing and sparse-layer fields of a MoE
/// architecture.
LogicalResult readMoeFields(const ConfigReader &reader,
                            const ArchitectureInfo &info, HFConfig &config) {
  Architecture arch = info.architecture;
  bool qwen = arch == Architecture::Qwen2Moe || arch == Architecture::Qwen3Moe;
  StringRef countKey = config.expertCountKey();
  bool ok =
      read(reader.size(countKey, info.numExperts, kMaxCount),
           config.numExperts) &&
      read(reader.size("num_experts_per_tok", info.expertsPerToken, kMaxCount),
           config.expertsPerToken) &&
      read(reader.number("router_aux_loss_coef", info.auxLossCoef,
                         /*allowZero=*/true),
           config.routerAuxLossCoef);
  if (!ok)
    return failure();
  config.expertIntermediateSize = config.intermediateSize;
  config.normTopkProb = arch == Architecture::Mixtral;
  if (arch != Architecture::Mixtral &&
      !read(reader.boolean("norm_topk_prob", false), config.normTopkProb))
    return failure();
  if (qwen &&
      !(read(reader.size("moe_intermediate_size",
                         arch == Architecture::Qwen2Moe ? 1408 : 768),
             config.expertIntermediateSize) &&
        read(reader.size("decoder_sparse_step", 1, kMaxCount),
             config.decoderSparseStep)))
    return failure();
  if (arch == Architecture::Qwen2Moe &&
      !read(reader.size("shared_expert_intermediate_size", 5632),
            config.sharedExpertIntermediateSize))
    return failure();
  if (config.expertsPerToken > config.numExperts)
    return reader.error("num_experts_per_tok")
           << "num_experts_per_tok (" << config.expertsPerToken
           << ") must not exceed " << countKey << " (" << config.numExperts
           << ")";
  // Qwen-MoE's field; Mixtral reads it too, as what moec upcycle writes
  // when only some layers become MoE.
  if (const json::Value *list = reader.find("mlp_only_layers")) {
    const json::Array *layers = list->getAsArray();
    if (arch == Architecture::Olmoe || !layers)
      return reader.error("mlp_only_layers")
             << (layers ? "not a field of " + info.name.str()
                        : "expected an array of layer indices, got " +
                              ConfigReader::describe(*list));
    for (const json::Value &entry : *layers) {
      std::optional<int64_t> layer = integerOf(entry);
      if (!layer || *layer < 0 || *layer >= config.numLayers)
        return reader.error("mlp_only_layers")
               << "entries must be layer indices in [0, " << config.numLayers
               << ")";
      config.mlpOnlyLayers.push_back(*layer);
    }
  }
  return success();
}
} // namespace

bool HFConfig::isSparseLayer(int64_t layer) const {
  return isMoe() && !llvm::is_contained(mlpOnlyLayers, layer) &&
         (layer + 1) % decoderSparseStep == 0;
}

StringRef HFConfig::ffnModuleName(int64_t layer) const {
  return architecture == Architecture::Mixtral && isSparseLayer(layer)
             ? "block_sparse_moe"
             : "mlp";
}

std::array<StringRef, 3> HFConfig::expertMatrixNames() const {
  if (architecture == Architecture::Mixtral)
    return {"w1", "w3", "w2"};
  return {"gate_proj", "up_proj", "down_proj"};
}

StringRef HFConfig::expertCountKey() const {
  return architecture == Architecture::Mixtral ? "num_local_experts"
                                               : "num_experts";
}

StringRef moe::supportedArchitectures() {
  static const std::string names = [] {
    std::string list;
    for (const ArchitectureInfo &info : kArchitectures)
      list += (list.empty() ? "" : ", ") + info.name.str();
    return list;
  }();
  return names;
}

FailureOr<HFConfig> moe::parseHFConfig(StringRef path, StringRef text,
                                       MLIRContext *context) {
  if (size_t deep = moert::findJsonTooDeep(text); deep != StringRef::npos) {
    size_t line = 1 + text.take_front(deep).count('\n');
    size_t column = deep - text.take_front(deep).rfind('\n');
    return emitError(FileLineColLoc::get(context, path, line, column))
           << "malformed JSON: nested deeper than " << moert::kMaxJsonDepth
           << " levels";
  }
  llvm::Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return reportJsonError(path, parsed.takeError(), context);
  const json::Object *root = parsed->getAsObject();
  if (!root)
    return emitError(FileLineColLoc::get(context, path, 1, 1))
               << "expected a JSON object at the top level, got "
               << ConfigReader::describe(*parsed);

  ConfigReader reader(path, text, *root, context);
  HFConfig config;
  config.path = path.str();
  FailureOr<const ArchitectureInfo *> arch = readArchitecture(reader);
  if (failed(arch))
    return failure();
  const ArchitectureInfo &info = **arch;
  config.architecture = info.architecture;
  config.architectureName = info.name.str();
  config.modelType = info.modelType.str();
  config.qkvBias = info.qkvBias;
  config.qkNorm = info.qkNorm;

  if (failed(rejectUnsupportedFeatures(reader, info)) ||
      failed(readDtype(reader, config)))
    return failure();

  bool ok =
      read(reader.size("vocab_size", std::nullopt), config.vocabSize) &&
      read(reader.size("hidden_size", std::nullopt), config.hiddenSize) &&
      read(reader.size("intermediate_size", std::nullopt),
           config.intermediateSize) &&
      read(reader.size("num_hidden_layers", std::nullopt, kMaxCount),
           config.numLayers) &&
      read(reader.size("num_attention_heads", std::nullopt, kMaxCount),
           config.numHeads) &&
      read(reader.size("num_key_value_heads", config.numHeads, kMaxCount),
           config.numKvHeads) &&
      read(reader.size("max_position_embeddings", info.maxPositions),
           config.maxPositionEmbeddings) &&
      read(reader.number("rms_norm_eps", info.rmsNormEps), config.rmsNormEps) &&
      read(reader.number("rope_theta", info.ropeTheta), config.ropeTheta) &&
      read(reader.number("initializer_range", 0.02, /*allowZero=*/true),
           config.initializerRange) &&
      read(reader.boolean("tie_word_embeddings", false),
           config.tieWordEmbeddings);
  if (!ok)
    return failure();

  if (config.numHeads % config.numKvHeads != 0)
    return reader.error("num_key_value_heads")
               << "num_key_value_heads (" << config.numKvHeads
               << ") must divide num_attention_heads (" << config.numHeads
               << ")";
  if (reader.find("head_dim")) {
    if (!read(reader.size("head_dim", std::nullopt), config.headDim))
      return failure();
  } else {
    if (config.hiddenSize % config.numHeads != 0)
      return reader.error("hidden_size")
                 << "hidden_size (" << config.hiddenSize
                 << ") is not divisible by num_attention_heads ("
                 << config.numHeads << ")";
    config.headDim = config.hiddenSize / config.numHeads;
  }
  if (config.headDim % 2 != 0)
    return reader.error(reader.find("head_dim") ? "head_dim" : "hidden_size")
               << "the head dimension (" << config.headDim
               << ") must be even for rotary embeddings";
  if (config.architecture == Architecture::Olmoe) {
    if (!read(reader.number("clip_qkv", 0), config.clipQkv))
      return failure();
  }
  if (info.moe && failed(readMoeFields(reader, info, config)))
    return failure();
  if (failed(checkParameterCount(reader, config)))
    return failure();
  return config;
}

FailureOr<HFConfig> moe::loadHFConfig(StringRef path, MLIRContext *context) {
  llvm::SmallString<256> file(path);
  if (llvm::sys::fs::is_directory(file))
    llvm::sys::path::append(file, "config.json");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(file, /*IsText=*/true);
  if (!buffer)
    return emitError(FileLineColLoc::get(context, file, 0, 0))
               << "cannot read: " << buffer.getError().message();
  return parseHFConfig(file, (*buffer)->getBuffer(), context);
}
