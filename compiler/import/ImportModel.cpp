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
    return param(name, {config.hiddenSize},
                 ConstantInitAttr::get(context, llvm::APFloat(1.0)));
  }
  Attribute normalInit() {
    return NormalInitAttr::get(context, llvm::APFloat(0.0),
                               llvm::APFloat(config.initializerRange));
  }

  Value rmsNorm(Value x, const Twine &weightName, Location loc);
  Value attention(Value x, const std::string &prefix);
  Value denseMlp(Value x, const std::string &prefix);
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
    Value w = matrix(prefix + "." + name + ".weight", {out, d});
    return LinearOp::create(body, at(prefix + "." + name), activation(out), x,
                            w);
  };
  Value q = project("q_proj", qWidth);
  Value k = project("k_proj", kvWidth);
  Value v = project("v_proj", kvWidth);
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

Value ModelBuilder::denseMlp(Value x, const std::string &prefix) {
  int64_t d = config.hiddenSize, f = config.intermediateSize;
  Value gate = LinearOp::create(body, at(prefix + ".gate_proj"), activation(f),
                                x, matrix(prefix + ".gate_proj.weight", {f, d}));
  Value up = LinearOp::create(body, at(prefix + ".up_proj"), activation(f), x,
                              matrix(prefix + ".up_proj.weight", {f, d}));
  Value hidden = SwigluOp::create(body, at(prefix + ".act_fn"), gate, up);
  return LinearOp::create(body, at(prefix + ".down_proj"), activation(d),
                          hidden, matrix(prefix + ".down_proj.weight", {d, f}));
}

Value ModelBuilder::sparseMoe(Value x, const std::string &prefix) {
  int64_t d = config.hiddenSize, f = config.intermediateSize;
  int64_t e = config.numExperts, k = config.expertsPerToken;
  int64_t dyn = ShapedType::kDynamic;
  Type i32 = body.getI32Type();

  Value router = matrix(prefix + ".gate.weight", {e, d});
  auto route = RouterOp::create(
      body, at(prefix + ".gate"),
      TypeRange{tensor({dyn, dyn, e}), tensor({dyn, dyn, k}),
                RankedTensorType::get({dyn, dyn, k}, i32)},
      x, router, k, /*normalize=*/true);
  auto dispatch = DispatchOp::create(
      body, at(prefix + ".dispatch"),
      TypeRange{tensor({dyn, d}),
                RankedTensorType::get({e}, body.getI64Type()),
                RankedTensorType::get({dyn}, i32)},
      x, route.getIndices(), e);
  // Stacked over experts: `*` in the name stands for the expert index of the
  // checkpoint tensors experts.0.w1.weight ... experts.{E-1}.w1.weight.
  std::string experts = prefix + ".experts.*.";
  Value w1 = matrix(experts + "w1.weight", {e, f, d});
  Value w3 = matrix(experts + "w3.weight", {e, f, d});
  Value w2 = matrix(experts + "w2.weight", {e, d, f});
  Value y = ExpertMLPOp::create(body, at(prefix + ".experts"),
                                dispatch.getGrouped().getType(),
                                dispatch.getGrouped(), dispatch.getCounts(),
                                w1, w3, w2);
  return CombineOp::create(body, at(prefix + ".combine"), activation(d), y,
                           route.getWeights(),
                           dispatch.getSourceSlots());
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
    bool sparse = config.isMoe() && !llvm::is_contained(config.mlpOnlyLayers, i);
    Value ffn = sparse ? sparseMoe(n, layer + ".block_sparse_moe")
                       : denseMlp(n, layer + ".mlp");
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
  if (config.isMoe()) {
    fields.push_back(b.getNamedAttr("num_local_experts",
                                    b.getI64IntegerAttr(config.numExperts)));
    fields.push_back(b.getNamedAttr(
        "num_experts_per_tok", b.getI64IntegerAttr(config.expertsPerToken)));
    fields.push_back(b.getNamedAttr(
        "router_aux_loss_coef", b.getF64FloatAttr(config.routerAuxLossCoef)));
    if (!config.mlpOnlyLayers.empty())
      fields.push_back(b.getNamedAttr(
          "mlp_only_layers", b.getI64ArrayAttr(config.mlpOnlyLayers)));
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
