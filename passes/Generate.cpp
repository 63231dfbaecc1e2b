//===- Generate.cpp - the moe-generate pass -------------------------------===//
//
// Both generation programs are @forward with its attention turned around: a
// layer's keys and values go into its cache at their positions and the
// queries attend over the cache, so one program serves prompts (many rows)
// and decoding (one row) alike, and the caches outlive each run.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/ShapePropagation.h"

#include "dialects/moe/MoeOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEGENERATE
#include "passes/Passes.h.inc"

namespace {
struct CachePair {
  FlatSymbolRefAttr keys, values;
};

struct Generate : impl::MoeGenerateBase<Generate> {
  using Base::Base;

  void runOnOperation() override {
    caches.clear();
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "moe-generate: no function @forward";
      return signalPassFailure();
    }
    int64_t rows = prefill ? int64_t(prefill) : int64_t(seq);
    if (failed(checkTokenCount(module, batch, seq)))
      return signalPassFailure();
    if (rows < 1 || rows > seq) {
      module.emitError() << "moe-generate: prefill must be in [1, seq "
                         << int64_t(seq)
                         << "], got " << rows;
      return signalPassFailure();
    }
    if (forward.getNumArguments() != 1 || forward.getNumResults() != 1 ||
        !isTokenIds(forward.getArgument(0).getType())) {
      forward.emitError() << "moe-generate: @forward must map token ids "
                             "tensor<?x?xi32> to logits";
      return signalPassFailure();
    }
    if (llvm::cast<RankedTensorType>(forward.getArgument(0).getType())
            .hasStaticShape()) {
      forward.emitError() << "moe-generate: @forward already has static "
                             "shapes; run moe-generate instead of "
                             "moe-specialize-shapes";
      return signalPassFailure();
    }
    if (failed(declareCaches(module, forward)) ||
        failed(buildProgram(module, forward, "prefill", rows, true)) ||
        failed(buildProgram(module, forward, "decode_step", 1, false)))
      return signalPassFailure();
    forward.erase();
  }

  /// One key and one value cache per attention op, named after its layer.
  LogicalResult declareCaches(ModuleOp module, func::FuncOp forward) {
    OpBuilder b(forward);
    int64_t index = 0;
    WalkResult walk = forward.walk([&](AttentionOp attention) -> WalkResult {
      if (!attention.getCausal())
        return attention.emitOpError()
               << "moe-generate: only causal attention can decode with a cache";
      auto keyType = llvm::cast<RankedTensorType>(attention.getKey().getType());
      if (ShapedType::isDynamic(keyType.getShape().back()))
        return attention.emitOpError() << "moe-generate: key width must be static";
      auto cacheType = RankedTensorType::get(
          {batch, seq, keyType.getShape().back()}, keyType.getElementType());
      std::string prefix = "attention." + std::to_string(index++);
      if (auto name = llvm::dyn_cast<NameLoc>(attention.getLoc()))
        prefix = name.getName().str();
      auto declare = [&](StringRef suffix) {
        std::string symbol = prefix + suffix.str();
        for (int n = 1; module.lookupSymbol(symbol); ++n)
          symbol = prefix + suffix.str() + "." + std::to_string(n);
        KVCacheOp::create(b, attention.getLoc(), symbol, cacheType);
        return FlatSymbolRefAttr::get(b.getContext(), symbol);
      };
      FlatSymbolRefAttr keys = declare(".k_cache");
      caches.push_back({keys, declare(".v_cache")});
      return WalkResult::advance();
    });
    return failure(walk.wasInterrupted());
  }

  /// Clones @forward as `name` over [batch, rows] tokens at `positions`;
  /// with `selectLast`, its logits are those of the row `last` picks.
  LogicalResult buildProgram(ModuleOp module, func::FuncOp forward,
                             StringRef name, int64_t rows, bool selectLast) {
    func::FuncOp program = forward.clone();
    program.setName(name);
    module.push_back(program);
    Block &body = program.front();
    Location loc = program.getLoc();
    Type ids = forward.getArgument(0).getType();
    Value positions = body.addArgument(ids, loc);
    setArgumentShape(program.getArgument(0), {batch, rows});
    setArgumentShape(llvm::cast<BlockArgument>(positions), {batch, rows});

    for (RopeOp rope : body.getOps<RopeOp>())
      if (!rope.getPositions())
        rope.getPositionsMutable().assign(positions);
    auto attentions = llvm::to_vector(body.getOps<AttentionOp>());
    for (auto [attention, cache] : llvm::zip(attentions, caches)) {
      OpBuilder b(attention);
      Location at = attention.getLoc();
      CacheWriteOp::create(b, at, cache.keys, attention.getKey(), positions);
      CacheWriteOp::create(b, at, cache.values, attention.getValue(),
                           positions);
      auto cached = CachedAttentionOp::create(
          b, at, attention.getType(), attention.getQuery(), positions,
          cache.keys, cache.values, attention.getNumHeadsAttr(),
          attention.getNumKvHeadsAttr(), attention.getScaleAttr());
      attention.replaceAllUsesWith(cached.getResult());
      attention.erase();
    }
    if (selectLast)
      selectLastRow(program, body.addArgument(ids, loc));
    std::string where = ("at batch " + Twine(batch) + ", " + Twine(rows) +
                         " rows of " + name)
                            .str();
    return propagateShapes(program, where);
  }

  /// Only the row `last` picks needs logits: the pick goes before the
  /// lm_head, the largest GEMM of a prompt's rows.
  void selectLastRow(func::FuncOp program, BlockArgument last) {
    setArgumentShape(last, {batch, 1});
    auto ret = cast<func::ReturnOp>(program.front().getTerminator());
    Value logits = ret.getOperand(0);
    auto head = logits.getDefiningOp<LinearOp>();
    Value rowsIn = head ? head.getInput() : logits;
    OpBuilder b(head ? head.getOperation() : ret.getOperation());
    auto type = llvm::cast<RankedTensorType>(rowsIn.getType());
    int64_t dyn = ShapedType::kDynamic;
    auto picked = SelectRowsOp::create(
        b, rowsIn.getLoc(), type.clone({dyn, dyn, type.getShape().back()}),
        rowsIn, last);
    if (head)
      head.getInputMutable().assign(picked);
    else
      ret.getOperandsMutable()[0].assign(picked);
  }

  SmallVector<CachePair> caches;
};
} // namespace
} // namespace mlir::moe
