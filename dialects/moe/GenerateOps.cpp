//===- GenerateOps.cpp - verifiers of the generation ops ------------------===//

#include "dialects/moe/MoeOps.h"
#include "dialects/moe/ShapeChecks.h"

using namespace mlir;
using namespace mlir::moe;

LogicalResult KVCacheOp::verify() {
  if (!getTensorType().hasStaticShape())
    return emitOpError() << "cache type must have a static shape, got "
                         << getType();
  return checkRank(*this, "cache", getType(), 3);
}

namespace {
FailureOr<KVCacheOp> lookupCache(Operation *op, FlatSymbolRefAttr name,
                                 SymbolTableCollection &symbolTable) {
  auto cache = symbolTable.lookupNearestSymbolFrom<KVCacheOp>(op, name);
  if (!cache)
    return op->emitOpError() << name << " does not name a moe.kv_cache";
  return cache;
}

/// Rows [B, T, W] at positions [B, T] against a cache [B, S, W].
LogicalResult checkRowsFitCache(Operation *op, StringRef what, Type rows,
                                int64_t width, Type positions,
                                KVCacheOp cache) {
  ArrayRef<int64_t> cacheShape = cache.getTensorType().getShape();
  if (failed(checkSameElementType(op, "cache", cache.getType(), what, rows)) ||
      failed(checkSize(op, "cache batch", cacheShape[0],
                       (what + " batch").str(), shapeOf(rows)[0])) ||
      failed(checkSize(op, "cache width", cacheShape[2], "the row width",
                       width)))
    return failure();
  return checkDims(op, "positions shape", shapeOf(positions),
                   (what + " [batch, rows]").str(), shapeOf(rows).drop_back());
}
} // namespace

LogicalResult CacheWriteOp::verify() {
  return checkRank(*this, "rows", getRows().getType(), 3);
}

LogicalResult
CacheWriteOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FailureOr<KVCacheOp> cache = lookupCache(*this, getCacheAttr(), symbolTable);
  if (failed(cache))
    return failure();
  Type rows = getRows().getType();
  return checkRowsFitCache(*this, "rows", rows, shapeOf(rows).back(),
                           getPositions().getType(), *cache);
}

int64_t CachedAttentionOp::getHeadDim() {
  return shapeOf(getQuery().getType()).back() / getNumHeads();
}

LogicalResult CachedAttentionOp::verify() {
  Type query = getQuery().getType();
  if (failed(checkRank(*this, "query", query, 3)) ||
      failed(checkAtLeast(*this, "num_heads", getNumHeads(), 1)) ||
      failed(checkAtLeast(*this, "num_kv_heads", getNumKvHeads(), 1)))
    return failure();
  if (getNumHeads() % getNumKvHeads() != 0)
    return emitOpError() << "num_kv_heads " << getNumKvHeads()
                         << " must divide num_heads " << getNumHeads();
  int64_t width = shapeOf(query).back();
  if (!ShapedType::isDynamic(width) && width % getNumHeads() != 0)
    return emitOpError() << "query width " << width
                         << " is not divisible by num_heads " << getNumHeads();
  if (std::optional<APFloat> scale = getScale();
      scale && !(scale->convertToDouble() > 0))
    return emitOpError() << "scale must be > 0, got "
                         << scale->convertToDouble();
  return success();
}

LogicalResult
CachedAttentionOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FailureOr<KVCacheOp> keys = lookupCache(*this, getKeyCacheAttr(), symbolTable);
  FailureOr<KVCacheOp> values =
      lookupCache(*this, getValueCacheAttr(), symbolTable);
  if (failed(keys) || failed(values))
    return failure();
  if (keys->getType() != values->getType())
    return emitOpError() << "key cache " << keys->getType()
                         << " and value cache " << values->getType()
                         << " must have the same type";
  Type query = getQuery().getType();
  int64_t width = shapeOf(query).back();
  int64_t kvWidth = ShapedType::isDynamic(width)
                        ? ShapedType::kDynamic
                        : getNumKvHeads() * getHeadDim();
  return checkRowsFitCache(*this, "query", query, kvWidth,
                           getPositions().getType(), *keys);
}

LogicalResult SelectRowsOp::verify() {
  Type input = getInput().getType(), index = getIndex().getType();
  if (failed(checkRank(*this, "input", input, 3)) ||
      failed(checkRank(*this, "index", index, 2)) ||
      failed(checkSameElementType(*this, "result", getType(), "input", input)) ||
      failed(checkSize(*this, "index batch", shapeOf(index)[0],
                       "the input batch", shapeOf(input)[0])))
    return failure();
  return checkDims(*this, "result shape", shapeOf(getType()),
                   "the index shape plus the input width",
                   {shapeOf(index)[0], shapeOf(index)[1], shapeOf(input)[2]});
}
