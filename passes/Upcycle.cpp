//===- Upcycle.cpp - the moe-upcycle pass (Drop-Upcycling) ----------------===//
//
// Finds each dense SwiGLU FFN of @forward by its Hugging Face parameter names
// (model.layers.{i}.mlp.{gate,up,down}_proj.weight), replaces it with a
// dropless MoE block whose parameters carry the names of the MoE family of
// the source (Llama: Mixtral; Qwen2: Qwen2-MoE with its shared expert;
// Qwen3: Qwen3-MoE), optionally fine-grained, and writes the program that
// derives those parameters from the dense ones (@initialize).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

#include <array>
#include <cmath>
#include <map>
#include <set>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEUPCYCLE
#include "passes/Passes.h.inc"

namespace {
/// One dense FFN of @forward: its three linear ops and their weights.
struct DenseFfn {
  int64_t layer;
  Value input;
  LinearOp gate, up, down;
  SwigluOp swiglu;
  ReadParamOp gateWeight, upWeight, downWeight;
};

/// The layer index of `model.layers.{i}.mlp.{name}.weight`, if that is what
/// `weight` reads.
std::optional<int64_t> denseLayerOf(Value weight, StringRef name) {
  auto read = weight.getDefiningOp<ReadParamOp>();
  if (!read)
    return std::nullopt;
  StringRef param = read.getName();
  if (!param.consume_front("model.layers.") ||
      !param.consume_back((".mlp." + name + ".weight").str()))
    return std::nullopt;
  int64_t layer;
  if (param.getAsInteger(10, layer))
    return std::nullopt;
  return layer;
}

/// down(swiglu(gate(x), up(x))) with the Llama parameter names, or nothing.
std::optional<DenseFfn> matchDenseFfn(LinearOp down) {
  std::optional<int64_t> layer = denseLayerOf(down.getWeight(), "down_proj");
  auto swiglu = down.getInput().getDefiningOp<SwigluOp>();
  if (!layer || !swiglu)
    return std::nullopt;
  auto gate = swiglu.getGate().getDefiningOp<LinearOp>();
  auto up = swiglu.getUp().getDefiningOp<LinearOp>();
  if (!gate || !up || gate.getInput() != up.getInput() ||
      denseLayerOf(gate.getWeight(), "gate_proj") != layer ||
      denseLayerOf(up.getWeight(), "up_proj") != layer)
    return std::nullopt;
  return DenseFfn{*layer,
                  gate.getInput(),
                  gate,
                  up,
                  down,
                  swiglu,
                  gate.getWeight().getDefiningOp<ReadParamOp>(),
                  up.getWeight().getDefiningOp<ReadParamOp>(),
                  down.getWeight().getDefiningOp<ReadParamOp>()};
}

/// The MoE architecture an upcycled source becomes, and how it names things.
struct UpcycleTarget {
  StringRef architecture;
  StringRef modelType;
  /// The FFN module of a sparse layer.
  StringRef block;
  /// Expert matrices in the order gate, up, down.
  std::array<StringRef, 3> matrices;
  StringRef expertCountKey;
  /// Whether the family lists dense layers in mlp_only_layers
  /// (transformers' Mixtral ignores that field).
  bool expressesDenseLayers;
  /// Whether every sparse block has a shared expert (Qwen2-MoE).
  bool sharedExpert;
};

constexpr UpcycleTarget kMixtral = {
    "MixtralForCausalLM", "mixtral", "block_sparse_moe",
    {"w1", "w3", "w2"}, "num_local_experts", false, false};
constexpr UpcycleTarget kQwen2Moe = {
    "Qwen2MoeForCausalLM", "qwen2_moe", "mlp",
    {"gate_proj", "up_proj", "down_proj"}, "num_experts", true, true};
constexpr UpcycleTarget kQwen3Moe = {
    "Qwen3MoeForCausalLM", "qwen3_moe", "mlp",
    {"gate_proj", "up_proj", "down_proj"}, "num_experts", true, false};

RankedTensorType typeOf(Value value) {
  return llvm::cast<RankedTensorType>(value.getType());
}

struct UpcyclePass : impl::MoeUpcycleBase<UpcyclePass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult checkOptions(ModuleOp module);
  FailureOr<std::set<int64_t>> selectLayers(ModuleOp module,
                                            int64_t numLayers);
  void rewriteFfn(ModuleOp module, DenseFfn ffn);
  void emitInitialize(ModuleOp module, ArrayRef<DenseFfn> ffns);
  Value deriveExpertMatrix(OpBuilder &b, Location loc, Value dense,
                           int64_t axis, const std::string &name,
                           const std::string &indexStream);
  void updateConfig(ModuleOp module, int64_t numLayers,
                    const std::set<int64_t> &moeLayers, int64_t denseWidth);
  std::string blockPrefix(int64_t layer) const {
    return "model.layers." + std::to_string(layer) + "." +
           target.block.str();
  }

  UpcycleTarget target = kMixtral;
};

LogicalResult UpcyclePass::checkOptions(ModuleOp module) {
  auto fail = [&](const Twine &message) {
    return module.emitError() << "moe-upcycle: " << message;
  };
  int64_t numExperts = experts, k = topK;
  // As many as a config may declare (num_local_experts), so that the
  // upcycled checkpoint compiles.
  constexpr int64_t kMaxExperts = 65536;
  if (numExperts < 1 || numExperts > kMaxExperts)
    return fail("experts must be in [1, " + Twine(kMaxExperts) + "], got " +
                Twine(numExperts));
  if (k < 1 || k > numExperts)
    return fail("top-k must be in [1, experts = " + Twine(numExperts) +
                "], got " + Twine(k));
  if (!(ratio >= 0.0 && ratio <= 1.0))
    return module.emitError() << "moe-upcycle: ratio must be in [0, 1], got "
                              << double(ratio);
  if (!llvm::is_contained({"drop", "naive", "noise", "scratch"}, method))
    return fail("method must be drop, naive, noise or scratch, got '" +
                method + "'");
  if (!llvm::is_contained({"per-matrix", "shared"}, indexSets))
    return fail("index-sets must be per-matrix or shared, got '" + indexSets +
                "'");
  if (!llvm::is_contained({"uniform", "normal"}, routerInit))
    return fail("router-init must be uniform or normal, got '" + routerInit +
                "'");
  if (!(auxLossCoef >= 0.0))
    return fail("aux-loss-coef must be >= 0");
  // Each dense family becomes its own MoE family; a dense source whose
  // layers that family would not keep (Qwen2's q/k/v biases come with
  // Qwen2-MoE's shared expert) is refused. MoE sources are refused below, as
  // already sparse.
  StringRef source = "LlamaForCausalLM";
  if (auto config = module->getAttrOfType<DictionaryAttr>("moe.hf_config"))
    if (auto arch = config.getAs<StringAttr>("architecture"))
      source = arch.getValue();
  if (source == "Qwen3ForCausalLM")
    target = kQwen3Moe;
  else if (source == "Qwen2ForCausalLM")
    target = kQwen2Moe;
  else if (source != "LlamaForCausalLM" && source != "MixtralForCausalLM" &&
           !source.contains_insensitive("moe"))
    return fail("upcycling " + source +
                " is not supported; the source must be a LlamaForCausalLM, "
                "Qwen2ForCausalLM or Qwen3ForCausalLM");
  if (granularity < 1 || int64_t(granularity) > kMaxExperts / numExperts)
    return fail("granularity must be >= 1 with experts x granularity at most " +
                Twine(kMaxExperts) + ", got " + Twine(int64_t(granularity)) +
                " with " + Twine(numExperts) + " experts");
  if (sharedExpert != target.sharedExpert)
    return fail(target.sharedExpert
                    ? Twine("Qwen2-MoE, the MoE family of ") + source +
                          ", always has a shared expert: pass shared-expert "
                          "(moec upcycle --shared-expert)"
                    : target.architecture +
                          " has no shared expert; shared-expert needs a "
                          "Qwen2ForCausalLM source (Qwen2-MoE)");
  return success();
}

FailureOr<std::set<int64_t>> UpcyclePass::selectLayers(ModuleOp module,
                                                       int64_t numLayers) {
  std::set<int64_t> chosen;
  StringRef spec = layers;
  if (spec == "all" || spec == "every-other") {
    for (int64_t i = spec == "all" ? 0 : 1; i < numLayers;
         i += spec == "all" ? 1 : 2)
      chosen.insert(i);
    return chosen;
  }
  SmallVector<StringRef> parts;
  spec.split(parts, ',');
  for (StringRef part : parts) {
    int64_t layer;
    if (part.trim().getAsInteger(10, layer) || layer < 0 || layer >= numLayers)
      return module.emitError()
             << "moe-upcycle: layers must be all, every-other or a list of "
                "layer indices in [0, "
             << numLayers << "), got '" << spec << "'";
    chosen.insert(layer);
  }
  return chosen;
}

void UpcyclePass::rewriteFfn(ModuleOp module, DenseFfn ffn) {
  MLIRContext *context = module.getContext();
  std::string prefix = blockPrefix(ffn.layer);
  auto [gateName, upName, downName] = target.matrices;
  StringAttr denseNames[3] = {ffn.gateWeight.getNameAttr().getAttr(),
                              ffn.upWeight.getNameAttr().getAttr(),
                              ffn.downWeight.getNameAttr().getAttr()};
  RankedTensorType gateType = typeOf(ffn.gateWeight);
  Type element = gateType.getElementType();
  int64_t dense = gateType.getDimSize(0), d = gateType.getDimSize(1);
  int64_t e = experts * granularity, k = topK * granularity;
  int64_t f = dense / granularity, dyn = ShapedType::kDynamic;

  // Parameters: the router and the stacked experts replace the dense three,
  // at the place of the dense gate_proj in the parameter table.
  auto denseParam = module.lookupSymbol<ParamOp>(ffn.gateWeight.getNameAttr());
  OpBuilder params(denseParam);
  Attribute init = denseParam.getInit();
  auto declare = [&](const std::string &name, ArrayRef<int64_t> shape) {
    ParamOp::create(params, denseParam.getLoc(), name,
                    RankedTensorType::get(shape, element), init);
  };
  std::string experts = prefix + ".experts.*.";
  declare(prefix + ".gate.weight", {e, d});
  declare(experts + gateName.str() + ".weight", {e, f, d});
  declare(experts + upName.str() + ".weight", {e, f, d});
  declare(experts + downName.str() + ".weight", {e, d, f});

  // The computation, built where the dense down projection was.
  OpBuilder b(ffn.down);
  auto at = [&](StringRef suffix) {
    return NameLoc::get(StringAttr::get(context, prefix + suffix),
                        ffn.down.getLoc());
  };
  auto read = [&](const std::string &name, ArrayRef<int64_t> shape) -> Value {
    return ReadParamOp::create(b, at(""), RankedTensorType::get(shape, element),
                               name);
  };
  SmallVector<int64_t> tokens(typeOf(ffn.input).getShape().drop_back());
  auto withLast = [&](int64_t last, Type type) {
    SmallVector<int64_t> shape(tokens);
    shape.push_back(last);
    return RankedTensorType::get(shape, type);
  };
  Type i32 = b.getI32Type();
  Value routerWeight = read(prefix + ".gate.weight", {e, d});
  auto route = RouterOp::create(
      b, at(".gate"),
      TypeRange{withLast(e, element), withLast(k, element), withLast(k, i32)},
      ffn.input, routerWeight, k, /*normalize=*/true);
  auto dispatch = DispatchOp::create(
      b, at(".dispatch"),
      TypeRange{RankedTensorType::get({dyn, d}, element),
                RankedTensorType::get({e}, b.getI64Type()),
                RankedTensorType::get({dyn}, i32)},
      ffn.input, route.getIndices(), e);
  Value w1 = read(experts + gateName.str() + ".weight", {e, f, d});
  Value w3 = read(experts + upName.str() + ".weight", {e, f, d});
  Value w2 = read(experts + downName.str() + ".weight", {e, d, f});
  Value y = ExpertMLPOp::create(b, at(".experts"),
                                dispatch.getGrouped().getType(),
                                dispatch.getGrouped(), dispatch.getCounts(),
                                w1, w3, w2);
  Value combined = CombineOp::create(b, at(".combine"), ffn.down.getType(), y,
                                     route.getWeights(),
                                     dispatch.getSourceSlots());
  if (sharedExpert) {
    // The dense FFN stays, as the shared expert under its new names, scaled
    // by the sigmoid of its gate and added to the routed output.
    std::string shared = prefix + ".shared_expert";
    std::pair<ReadParamOp, StringRef> renames[] = {
        {ffn.gateWeight, "gate_proj"},
        {ffn.upWeight, "up_proj"},
        {ffn.downWeight, "down_proj"}};
    for (auto [weight, name] : renames) {
      std::string symbol = shared + "." + name.str() + ".weight";
      declare(symbol, typeOf(weight).getShape());
      weight.setName(symbol);
    }
    declare(shared + "_gate.weight", {1, d});
    b.setInsertionPointAfter(ffn.down);
    Value gate = LinearOp::create(b, at(".shared_expert_gate"), withLast(1, element),
                                  ffn.input, read(shared + "_gate.weight", {1, d}));
    Value gated = SigmoidGateOp::create(b, at(".shared_expert_gate"),
                                        ffn.down.getResult(), gate);
    Value sum = AddOp::create(b, at(""), combined, gated);
    ffn.down.getResult().replaceAllUsesExcept(sum, gated.getDefiningOp());
  } else {
    ffn.down.getResult().replaceAllUsesWith(combined);
    for (Operation *op : {ffn.down.getOperation(), ffn.swiglu.getOperation(),
                          ffn.gate.getOperation(), ffn.up.getOperation()})
      op->erase();
  }

  // Dense declarations go once nothing reads them (@initialize takes them as
  // arguments instead).
  for (StringAttr name : denseNames) {
    bool stillRead = false;
    module.walk([&](ReadParamOp read) {
      if (read.getNameAttr().getAttr() == name && read->use_empty())
        read->erase();
      else
        stillRead |= read.getNameAttr().getAttr() == name;
    });
    if (auto param = module.lookupSymbol<ParamOp>(name); param && !stillRead)
      param->erase();
  }
}

Value UpcyclePass::deriveExpertMatrix(OpBuilder &b, Location loc, Value dense,
                                      int64_t axis, const std::string &name,
                                      const std::string &indexStream) {
  if (method == "naive")
    return dense;
  int64_t width = typeOf(dense).getDimSize(axis);
  int64_t count = static_cast<int64_t>(std::floor(ratio * double(width)));
  if (count == 0) // r = 0: statistics of an empty slice are undefined; copy
    return dense;
  Value indices = RandomIndicesOp::create(
      b, loc, RankedTensorType::get({count}, b.getI64Type()), count, width,
      seed, indexStream);
  if (method == "noise")
    return AddNoiseSliceOp::create(b, loc, dense.getType(), dense, indices,
                                   axis, llvm::APFloat(0.02), seed,
                                   name + ".noise");
  auto moments = SliceMomentsOp::create(b, loc, dense, indices, axis);
  return ResampleSliceOp::create(b, loc, dense.getType(), dense, indices,
                                 moments.getMean(), moments.getStd(), axis,
                                 seed, name + ".values");
}

void UpcyclePass::emitInitialize(ModuleOp module, ArrayRef<DenseFfn> ffns) {
  MLIRContext *context = module.getContext();
  SmallVector<Type> inputs;
  SmallVector<std::string> sources;
  for (DenseFfn ffn : ffns)
    for (ReadParamOp weight : {ffn.gateWeight, ffn.upWeight, ffn.downWeight}) {
      inputs.push_back(weight.getType());
      sources.push_back(weight.getName().str());
    }
  OpBuilder b(context);
  b.setInsertionPointToEnd(module.getBody());
  Location loc = NameLoc::get(StringAttr::get(context, "initialize"),
                              module.getLoc());
  auto init = func::FuncOp::create(b, loc, "initialize",
                                   FunctionType::get(context, inputs, {}));
  for (auto [i, source] : llvm::enumerate(sources))
    init.setArgAttr(i, "moe.source", b.getStringAttr(source));
  b.setInsertionPointToStart(init.addEntryBlock());

  for (auto [n, ffn] : llvm::enumerate(ffns)) {
    std::string prefix = blockPrefix(ffn.layer);
    Value dense[3] = {init.getArgument(3 * n), init.getArgument(3 * n + 1),
                      init.getArgument(3 * n + 2)};
    // gate (w1) <- gate_proj and up (w3) <- up_proj (rows are neurons),
    // down (w2) <- down_proj (columns are neurons). Fine expert e * G + g
    // takes slice g of the neurons; with renormalised top-(k G) routing it
    // gets 1/G of its coarse expert's weight, which its down projection
    // gives back (x G); a shared expert takes half of the output (x 1/2).
    const std::array<StringRef, 3> &matrices = target.matrices;
    const int64_t axes[3] = {0, 0, 1};
    int64_t fine = typeOf(dense[0]).getDimSize(0) / granularity;
    double downScale = double(granularity) * (sharedExpert ? 0.5 : 1.0);
    for (int m = 0; m < 3; ++m) {
      SmallVector<Value> perExpert;
      for (int64_t e = 0; e < experts * granularity; ++e) {
        std::string expert = prefix + ".experts." + std::to_string(e);
        std::string name = expert + "." + matrices[m].str() + ".weight";
        std::string indexStream =
            indexSets == "shared" ? expert + ".indices" : name + ".indices";
        Location at = NameLoc::get(StringAttr::get(context, name), loc);
        Value source = dense[m];
        if (granularity > 1) {
          SmallVector<int64_t> shape(typeOf(source).getShape());
          shape[axes[m]] = fine;
          source = SliceOp::create(
              b, at, RankedTensorType::get(shape, typeOf(source).getElementType()),
              source, axes[m], (e % granularity) * fine);
        }
        Value derived =
            deriveExpertMatrix(b, at, source, axes[m], name, indexStream);
        if (m == 2 && downScale != 1.0)
          derived = ScaleOp::create(b, at, derived,
                                    b.getF64FloatAttr(downScale));
        perExpert.push_back(derived);
      }
      RankedTensorType one = typeOf(perExpert.front());
      SmallVector<int64_t> shape = {int64_t(perExpert.size())};
      llvm::append_range(shape, one.getShape());
      std::string stacked =
          prefix + ".experts.*." + matrices[m].str() + ".weight";
      Value all = StackOp::create(
          b, loc, RankedTensorType::get(shape, one.getElementType()), perExpert);
      WriteParamOp::create(b, loc, stacked, all);
    }
    std::string router = prefix + ".gate.weight";
    RankedTensorType gateType = typeOf(dense[0]);
    Type element = gateType.getElementType();
    int64_t d = gateType.getDimSize(1);
    StringRef distribution =
        routerInit == "uniform" ? "centered_uniform" : "normal";
    Location routerLoc = NameLoc::get(StringAttr::get(context, router), loc);
    Value weights;
    if (granularity == 1) {
      weights = RandomTensorOp::create(
          b, routerLoc, RankedTensorType::get({int64_t(experts), d}, element),
          distribution, llvm::APFloat(0.02), seed, router);
    } else {
      // Megatron-Core's layout: coarse row e repeated for its G fine experts.
      SmallVector<Value> rows;
      for (int64_t e = 0; e < experts; ++e) {
        Value row = RandomTensorOp::create(
            b, routerLoc, RankedTensorType::get({d}, element), distribution,
            llvm::APFloat(0.02), seed, router + ".row" + std::to_string(e));
        rows.append(granularity, row);
      }
      weights = StackOp::create(
          b, loc,
          RankedTensorType::get({int64_t(rows.size()), d}, element), rows);
    }
    WriteParamOp::create(b, loc, router, weights);
    if (sharedExpert) {
      std::string shared = prefix + ".shared_expert";
      std::pair<int, StringRef> copies[] = {
          {0, "gate_proj"}, {1, "up_proj"}, {2, "down_proj"}};
      for (auto [m, name] : copies)
        WriteParamOp::create(b, loc, shared + "." + name.str() + ".weight",
                             dense[m]);
      Value zero = FillOp::create(b, loc, RankedTensorType::get({1, d}, element),
                                  b.getF64FloatAttr(0.0));
      WriteParamOp::create(b, loc, shared + "_gate.weight", zero);
    }
  }
  func::ReturnOp::create(b, loc);
}

void UpcyclePass::updateConfig(ModuleOp module, int64_t numLayers,
                               const std::set<int64_t> &moeLayers,
                               int64_t denseWidth) {
  Builder b(module.getContext());
  NamedAttrList config;
  if (auto old = module->getAttrOfType<DictionaryAttr>("moe.hf_config"))
    config.append(old.getValue());
  config.set("architecture", b.getStringAttr(target.architecture));
  config.set("model_type", b.getStringAttr(target.modelType));
  config.set(target.expertCountKey,
             b.getI64IntegerAttr(experts * granularity));
  config.set("num_experts_per_tok", b.getI64IntegerAttr(topK * granularity));
  config.set("router_aux_loss_coef", b.getF64FloatAttr(auxLossCoef));
  int64_t fine = denseWidth / granularity;
  if (target.expressesDenseLayers) {
    // Renormalised top-k, as the upcycled block computes; dense layers keep
    // intermediate_size.
    config.set("moe_intermediate_size", b.getI64IntegerAttr(fine));
    config.set("norm_topk_prob", b.getBoolAttr(true));
    config.set("decoder_sparse_step", b.getI64IntegerAttr(1));
  } else {
    // Mixtral's intermediate_size is the experts' width.
    config.set("intermediate_size", b.getI64IntegerAttr(fine));
  }
  if (sharedExpert)
    config.set("shared_expert_intermediate_size",
               b.getI64IntegerAttr(denseWidth));
  if (int64_t(moeLayers.size()) != numLayers) {
    // Qwen-MoE's name for the layers that keep a dense FFN.
    SmallVector<Attribute> dense;
    for (int64_t i = 0; i < numLayers; ++i)
      if (!moeLayers.count(i))
        dense.push_back(b.getI64IntegerAttr(i));
    config.set("mlp_only_layers", b.getArrayAttr(dense));
  }
  module->setAttr("moe.hf_config", config.getDictionary(module.getContext()));
  module->setAttr(
      "moe.upcycling",
      b.getDictionaryAttr({
          b.getNamedAttr("method", b.getStringAttr(method)),
          b.getNamedAttr("ratio", b.getF64FloatAttr(ratio)),
          b.getNamedAttr("index_sets", b.getStringAttr(indexSets)),
          b.getNamedAttr("router_init", b.getStringAttr(routerInit)),
          b.getNamedAttr("seed", b.getI64IntegerAttr(seed)),
          b.getNamedAttr("layers", b.getStringAttr(layers)),
      }));
}

void UpcyclePass::runOnOperation() {
  ModuleOp module = getOperation();
  if (failed(checkOptions(module)))
    return signalPassFailure();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    module.emitError() << "moe-upcycle: no function @forward";
    return signalPassFailure();
  }
  if (!forward.getOps<DispatchOp>().empty() ||
      module.lookupSymbol("initialize")) {
    module.emitError() << "moe-upcycle: the model is already a Mixture of "
                          "Experts; upcycling needs a dense source";
    return signalPassFailure();
  }

  std::map<int64_t, DenseFfn> ffns;
  forward.walk([&](LinearOp down) {
    if (std::optional<DenseFfn> ffn = matchDenseFfn(down))
      ffns.emplace(ffn->layer, *ffn);
  });
  // Layers are counted by attention blocks (a layer may already lack a dense
  // FFN), or by the FFNs themselves in an attention-free graph.
  int64_t numLayers = 0;
  forward.walk([&](AttentionOp) { ++numLayers; });
  if (!ffns.empty())
    numLayers = std::max(numLayers, ffns.rbegin()->first + 1);
  if (ffns.empty()) {
    module.emitError() << "moe-upcycle: found no dense FFN "
                          "(model.layers.{i}.mlp.{gate,up,down}_proj.weight) "
                          "in @forward";
    return signalPassFailure();
  }
  FailureOr<std::set<int64_t>> chosen = selectLayers(module, numLayers);
  if (failed(chosen))
    return signalPassFailure();
  if (int64_t(chosen->size()) != numLayers && !target.expressesDenseLayers) {
    module.emitError() << "moe-upcycle: " << target.architecture
                       << " cannot keep dense layers (transformers ignores "
                          "mlp_only_layers there); upcycle every layer, or "
                          "start from a Qwen3ForCausalLM, whose Qwen3-MoE "
                          "lists dense layers in mlp_only_layers";
    return signalPassFailure();
  }

  SmallVector<DenseFfn> selected;
  for (int64_t layer : *chosen) {
    auto it = ffns.find(layer);
    if (it == ffns.end()) {
      module.emitError() << "moe-upcycle: layer " << layer
                         << " has no dense FFN to upcycle";
      return signalPassFailure();
    }
    selected.push_back(it->second);
  }
  for (DenseFfn ffn : selected) {
    int64_t width = typeOf(ffn.gateWeight).getDimSize(0);
    if (width % granularity != 0) {
      module.emitError() << "moe-upcycle: granularity " << int64_t(granularity)
                         << " does not divide the FFN width " << width
                         << " of layer " << ffn.layer;
      return signalPassFailure();
    }
  }
  // @initialize reads the dense weights before the rewrite drops them.
  if (method != "scratch")
    emitInitialize(module, selected);
  int64_t denseWidth = typeOf(selected.front().gateWeight).getDimSize(0);
  for (DenseFfn ffn : selected)
    rewriteFfn(module, ffn);
  updateConfig(module, numLayers, *chosen, denseWidth);
}
} // namespace
} // namespace mlir::moe
