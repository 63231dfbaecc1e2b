//===- ImportModel.cpp - HF config to the moe dialect ---------------------===//

#include "compiler/import/ImportModel.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

#include <string>

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Emits the parameter declarations at the top of the module and the
/// computation in `@forward`, keeping a builder for each.
class ModelBuilder {
public:
  ModelBuilder(const HFConfig &config, ModuleOp module, Type elementType)
      : config(config), context(module.getContext()), elementType(elementType),
        paramBuilder(module.getBodyRegion()), body(context) {
    Location fileLoc = FileLineColLoc::get(context, config.path, 1, 1);
    paramLoc = NameLoc::get(StringAttr::get(context, "parameters"), fileLoc);
    this->fileLoc = fileLoc;
  }

  void build(ModuleOp module);

private:
  RankedTensorType tensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, elementType);
  }
  RankedTensorType activation(int64_t width) {
    return tensor({ShapedType::kDynamic, ShapedType::kDynamic, width});
  }
  Location at(const Twine &name) {
    return NameLoc::get(StringAttr::get(context, name), fileLoc);
  }

  /// Declares a parameter and reads it in the function being built.
  Value param(const Twine &name, ArrayRef<int64_t> shape, Attribute init);
  Value matrix(const Twine &name, ArrayRef<int64_t> shape) {
    return param(name, shape, normalInit());
  }
  Value normWeight(const Twine &name) {
    return param(name, {config.hiddenSize}, oneInit());
  }
  Attribute oneInit() {
    return ConstantInitAttr::get(context, llvm::APFloat(1.0));
  }
  Attribute zeroInit() {
    return ConstantInitAttr::get(context, llvm::APFloat(0.0));
  }
  Attribute normalInit() {
    return NormalInitAttr::get(context, llvm::APFloat(0.0),
                               llvm::APFloat(config.initializerRange));
  }

  Value rmsNorm(Value x, const Twine &weightName, Location loc);
  Value attention(Value x, const std::string &prefix);
  Value denseMlp(Value x, const std::string &prefix, int64_t width);
  Value sparseMoe(Value x, const std::string &prefix);

  const HFConfig &config;
  MLIRContext *context;
  Type elementType;
  OpBuilder paramBuilder;
  OpBuilder body;
  Location fileLoc = UnknownLoc::get(context);
  Location paramLoc = UnknownLoc::get(context);
};

Value ModelBuilder::param(const Twine &name, ArrayRef<int64_t> shape,
                          Attribute init) {
  RankedTensorType type = tensor(shape);
  std::string symbol = name.str();
  ParamOp::create(paramBuilder, paramLoc, symbol, type, init);
  return ReadParamOp::create(body, at(symbol), type, symbol);
}

Value ModelBuilder::rmsNorm(Value x, const Twine &weightName, Location loc) {
  Value weight = normWeight(weightName);
  return RMSNormOp::create(body, loc, x.getType(), x, weight,
                           body.getF64FloatAttr(config.rmsNormEps));
}

Value ModelBuilder::attention(Value x, const std::string &prefix) {
  int64_t d = config.hiddenSize, hd = config.headDim;
  int64_t qWidth = config.numHeads * hd, kvWidth = config.numKvHeads * hd;
  Location loc = at(prefix);
  auto project = [&](StringRef name, int64_t out) -> Value {
    std::string module = prefix + "." + name.str();
    Value w = matrix(module + ".weight", {out, d});
    Value y = LinearOp::create(body, at(module), activation(out), x, w);
    if (config.qkvBias)
      y = AddBiasOp::create(body, at(module), y,
                            param(module + ".bias", {out}, zeroInit()));
    return y;
  };
  // Qwen3 normalises each head, OLMoE the whole projection, before RoPE.
  auto norm = [&](Value y, StringRef name, int64_t width) -> Value {
    if (config.qkNorm == QKNorm::None)
      return y;
    int64_t group = config.qkNorm == QKNorm::PerHead ? hd : width;
    std::string module = prefix + "." + name.str();
    return RMSNormOp::create(body, at(module), y.getType(), y,
                             param(module + ".weight", {group}, oneInit()),
                             body.getF64FloatAttr(config.rmsNormEps));
  };
  auto clip = [&](Value y) -> Value {
    if (config.clipQkv == 0)
      return y;
    return ClampOp::create(body, loc, y,
                           body.getF64FloatAttr(config.clipQkv));
  };
  Value q = clip(norm(project("q_proj", qWidth), "q_norm", qWidth));
  Value k = clip(norm(project("k_proj", kvWidth), "k_norm", kvWidth));
  Value v = clip(project("v_proj", kvWidth));
  llvm::APFloat theta(config.ropeTheta);
  Location rotary = at(prefix + ".rotary_emb");
  q = RopeOp::create(body, rotary, q.getType(), q, /*positions=*/Value(),
                     config.numHeads, theta);
  k = RopeOp::create(body, rotary, k.getType(), k, /*positions=*/Value(),
                     config.numKvHeads, theta);
  Value a = AttentionOp::create(body, loc, q.getType(), q, k, v,
                                config.numHeads, config.numKvHeads,
                                /*causal=*/true, /*scale=*/FloatAttr());
  Value wo = matrix(prefix + ".o_proj.weight", {d, qWidth});
  return LinearOp::create(body, at(prefix + ".o_proj"), activation(d), a, wo);
}

Value ModelBuilder::denseMlp(Value x, const std::string &prefix, int64_t f) {
  int64_t d = config.hiddenSize;
  Value gate = LinearOp::create(body, at(prefix + ".gate_proj"), activation(f),
                                x, matrix(prefix + ".gate_proj.weight", {f, d}));
  Value up = LinearOp::create(body, at(prefix + ".up_proj"), activation(f), x,
                              matrix(prefix + ".up_proj.weight", {f, d}));
  Value hidden = SwigluOp::create(body, at(prefix + ".act_fn"), gate, up);
  return LinearOp::create(body, at(prefix + ".down_proj"), activation(d),
                          hidden, matrix(prefix + ".down_proj.weight", {d, f}));
}

Value ModelBuilder::sparseMoe(Value x, const std::string &prefix) {
  int64_t d = config.hiddenSize, f = config.expertIntermediateSize;
  int64_t e = config.numExperts, k = config.expertsPerToken;
  int64_t dyn = ShapedType::kDynamic;
  Type i32 = body.getI32Type();

  Value router = matrix(prefix + ".gate.weight", {e, d});
  auto route = RouterOp::create(
      body, at(prefix + ".gate"),
      TypeRange{tensor({dyn, dyn, e}), tensor({dyn, dyn, k}),
                RankedTensorType::get({dyn, dyn, k}, i32)},
      x, router, k, config.normTopkProb);
  auto dispatch = DispatchOp::create(
      body, at(prefix + ".dispatch"),
      TypeRange{tensor({dyn, d}),
                RankedTensorType::get({e}, body.getI64Type()),
                RankedTensorType::get({dyn}, i32)},
      x, route.getIndices(), e);
  // Stacked over experts: `*` in the name stands for the expert index of the
  // checkpoint tensors experts.0.w1.weight ... experts.{E-1}.w1.weight.
  std::string experts = prefix + ".experts.*.";
  auto [gateName, upName, downName] = config.expertMatrixNames();
  Value w1 = matrix(experts + gateName + ".weight", {e, f, d});
  Value w3 = matrix(experts + upName + ".weight", {e, f, d});
  Value w2 = matrix(experts + downName + ".weight", {e, d, f});
  Value y = ExpertMLPOp::create(body, at(prefix + ".experts"),
                                dispatch.getGrouped().getType(),
                                dispatch.getGrouped(), dispatch.getCounts(),
                                w1, w3, w2);
  Value routed = CombineOp::create(body, at(prefix + ".combine"),
                                   activation(d), y, route.getWeights(),
                                   dispatch.getSourceSlots());
  if (config.sharedExpertIntermediateSize == 0)
    return routed;
  // Qwen2-MoE: every token also passes a shared expert, scaled by a sigmoid
  // gate of its own.
  std::string shared = prefix + ".shared_expert";
  Value sharedOut = denseMlp(x, shared, config.sharedExpertIntermediateSize);
  Value gate = LinearOp::create(
      body, at(shared + "_gate"), activation(1), x,
      matrix(shared + "_gate.weight", {1, d}));
  sharedOut =
      SigmoidGateOp::create(body, at(shared + "_gate"), sharedOut, gate);
  return AddOp::create(body, at(prefix), routed, sharedOut);
}

void ModelBuilder::build(ModuleOp module) {
  int64_t dyn = ShapedType::kDynamic;
  Type tokensType = RankedTensorType::get({dyn, dyn}, body.getI32Type());
  RankedTensorType logitsType = activation(config.vocabSize);
  auto forward = func::FuncOp::create(
      paramBuilder, at("forward"), "forward",
      FunctionType::get(context, {tokensType}, {logitsType}));
  // Parameters go before @forward, in checkpoint order.
  paramBuilder.setInsertionPoint(forward);
  body.setInsertionPointToStart(forward.addEntryBlock());
  Value tokens = forward.getArgument(0);

  Value table = matrix("model.embed_tokens.weight",
                       {config.vocabSize, config.hiddenSize});
  Value h = EmbeddingOp::create(body, at("model.embed_tokens"),
                                activation(config.hiddenSize), table, tokens);
  for (int64_t i = 0; i < config.numLayers; ++i) {
    std::string layer = "model.layers." + std::to_string(i);
    Value n = rmsNorm(h, layer + ".input_layernorm.weight",
                      at(layer + ".input_layernorm"));
    h = AddOp::create(body, at(layer), h, attention(n, layer + ".self_attn"));
    n = rmsNorm(h, layer + ".post_attention_layernorm.weight",
                at(layer + ".post_attention_layernorm"));
    std::string ffnName = layer + "." + config.ffnModuleName(i).str();
    Value ffn = config.isSparseLayer(i)
                    ? sparseMoe(n, ffnName)
                    : denseMlp(n, ffnName, config.intermediateSize);
    h = AddOp::create(body, at(layer), h, ffn);
  }
  h = rmsNorm(h, "model.norm.weight", at("model.norm"));
  Value head = config.tieWordEmbeddings
                   ? table
                   : matrix("lm_head.weight",
                            {config.vocabSize, config.hiddenSize});
  Value logits = LinearOp::create(body, at("lm_head"), logitsType, h, head);
  func::ReturnOp::create(body, at("forward"), logits);
}

/// The config's fields, kept on the module so later stages (artifact,
/// checkpoint export) need not read the JSON again.
DictionaryAttr configAttr(const HFConfig &config, Builder &b) {
  SmallVector<NamedAttribute> fields = {
      b.getNamedAttr("architecture", b.getStringAttr(config.architectureName)),
      b.getNamedAttr("model_type", b.getStringAttr(config.modelType)),
      b.getNamedAttr("vocab_size", b.getI64IntegerAttr(config.vocabSize)),
      b.getNamedAttr("hidden_size", b.getI64IntegerAttr(config.hiddenSize)),
      b.getNamedAttr("intermediate_size",
                     b.getI64IntegerAttr(config.intermediateSize)),
      b.getNamedAttr("num_hidden_layers", b.getI64IntegerAttr(config.numLayers)),
      b.getNamedAttr("num_attention_heads", b.getI64IntegerAttr(config.numHeads)),
      b.getNamedAttr("num_key_value_heads",
                     b.getI64IntegerAttr(config.numKvHeads)),
      b.getNamedAttr("head_dim", b.getI64IntegerAttr(config.headDim)),
      b.getNamedAttr("max_position_embeddings",
                     b.getI64IntegerAttr(config.maxPositionEmbeddings)),
      b.getNamedAttr("rms_norm_eps", b.getF64FloatAttr(config.rmsNormEps)),
      b.getNamedAttr("rope_theta", b.getF64FloatAttr(config.ropeTheta)),
      b.getNamedAttr("initializer_range",
                     b.getF64FloatAttr(config.initializerRange)),
      b.getNamedAttr("tie_word_embeddings",
                     b.getBoolAttr(config.tieWordEmbeddings)),
      b.getNamedAttr("torch_dtype", b.getStringAttr(config.torchDtype)),
  };
  auto add = [&](StringRef key, Attribute value) {
    fields.push_back(b.getNamedAttr(key, value));
  };
  if (config.clipQkv != 0)
    add("clip_qkv", b.getF64FloatAttr(config.clipQkv));
  if (config.isMoe()) {
    add(config.expertCountKey(), b.getI64IntegerAttr(config.numExperts));
    add("num_experts_per_tok", b.getI64IntegerAttr(config.expertsPerToken));
    add("router_aux_loss_coef", b.getF64FloatAttr(config.routerAuxLossCoef));
    if (config.architecture != Architecture::Mixtral)
      add("norm_topk_prob", b.getBoolAttr(config.normTopkProb));
    if (config.architecture == Architecture::Qwen2Moe ||
        config.architecture == Architecture::Qwen3Moe) {
      add("moe_intermediate_size",
          b.getI64IntegerAttr(config.expertIntermediateSize));
      add("decoder_sparse_step", b.getI64IntegerAttr(config.decoderSparseStep));
    }
    if (config.sharedExpertIntermediateSize != 0)
      add("shared_expert_intermediate_size",
          b.getI64IntegerAttr(config.sharedExpertIntermediateSize));
    if (!config.mlpOnlyLayers.empty())
      add("mlp_only_layers", b.getI64ArrayAttr(config.mlpOnlyLayers));
  }
  return b.getDictionaryAttr(fields);
}
} // namespace

Type moe::elementTypeForTorchDtype(StringRef dtype, MLIRContext *context) {
  if (dtype == "float32")
    return Float32Type::get(context);
  if (dtype == "bfloat16")
    return BFloat16Type::get(context);
  if (dtype == "float16")
    return Float16Type::get(context);
  return {};
}

OwningOpRef<ModuleOp> moe::importModel(const HFConfig &config,
                                       MLIRContext *context, Type elementType) {
  context->loadDialect<MoeDialect, func::FuncDialect>();
  if (!elementType)
    elementType = elementTypeForTorchDtype(config.torchDtype, context);
  Location loc = FileLineColLoc::get(context, config.path, 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  Builder b(context);
  (*module)->setAttr("moe.hf_config", configAttr(config, b));
  ModelBuilder(config, *module, elementType).build(*module);
  return module;
}
