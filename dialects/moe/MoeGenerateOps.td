//===- MoeGenerateOps.td - text generation operations ------*- tablegen -*-===//
//
// The ops `moe-generate` builds: key/value caches that outlive one program
// run, writes into them, attention over them, and the pick of each
// sequence's last prompt row. A cache is module-level state, like a
// parameter; the ops that touch it name it by symbol and run in program
// order (a write before the attention that reads it), so they are not Pure.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_GENERATE_OPS_TD
#define MOE_GENERATE_OPS_TD

def Moe_KVCacheOp : Moe_Op<"kv_cache", [Symbol, HasParent<"ModuleOp">]> {
  let summary = "declare a key or value cache";
  let description = [{
    Declares one cache of a generation model: [batch, capacity, width] rows,
    one per sequence and position, kept from one program run to the next.
    The runtime allocates it once; it is not part of the checkpoint. Write it
    with `moe.cache_write` and attend over it with `moe.cached_attention`.

    Example:
    ```mlir
    moe.kv_cache @"model.layers.0.self_attn.k_cache" : tensor<2x128x64xf32>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<Moe_FloatTensor>:$type);
  let assemblyFormat = "$sym_name `:` $type attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Moe_CacheWriteOp : Moe_Op<"cache_write",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "store rows into a cache at their positions";
  let description = [{
    `rows` is [B, T, W] and `positions` [B, T]: row `t` of sequence `b` is
    stored at `cache[b, positions[b, t]]`. A negative position stores
    nothing (a padded row, or a sequence that has stopped); a position at or
    past the cache's capacity is an error at run time.

    Example:
    ```mlir
    moe.cache_write @"model.layers.0.self_attn.k_cache" = %k
        positions %pos : tensor<2x1x64xf32>, tensor<2x1xi32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$cache, Moe_FloatTensor:$rows,
                       Moe_IndexTensor:$positions);
  let assemblyFormat = [{
    $cache `=` $rows `positions` $positions attr-dict `:` type($rows) `,`
    type($positions)
  }];
  let hasVerifier = 1;
}

def Moe_CachedAttentionOp : Moe_Op<"cached_attention",
    [AllTypesMatch<["query", "result"]>,
     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "causal attention of new rows over the key/value caches";
  let description = [{
    `query` is [B, T, H * Dh] at `positions` [B, T]; `key_cache` and
    `value_cache` name caches [B, S, Hkv * Dh]. The query row at position
    `p` attends to cache rows `0 .. p` of its own sequence, which must have
    been written (by this program or an earlier run): causal attention
    with per-sequence positions and lengths, over a cache of capacity S.
    Query head `h` reads KV head `h / (H / Hkv)`; scores are scaled by
    `scale` (default `1 / sqrt(Dh)`). Rows at a negative position give
    zeros.

    Example:
    ```mlir
    %a = moe.cached_attention %q positions %pos
        keys @"model.layers.0.self_attn.k_cache"
        values @"model.layers.0.self_attn.v_cache"
        {num_heads = 4 : i64, num_kv_heads = 2 : i64}
        : tensor<2x1x128xf32>, tensor<2x1xi32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$query, Moe_IndexTensor:$positions,
                       FlatSymbolRefAttr:$key_cache,
                       FlatSymbolRefAttr:$value_cache, Moe_I64Attr:$num_heads,
                       Moe_I64Attr:$num_kv_heads, OptionalAttr<F64Attr>:$scale);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $query `positions` $positions `keys` $key_cache `values` $value_cache
    attr-dict `:` type($query) `,` type($positions)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getHeadDim();
  }];
}

def Moe_SelectRowsOp : Moe_Op<"select_rows", [Pure]> {
  let summary = "pick rows of each sequence by index";
  let description = [{
    `input` is [B, T, D] and `index` [B, N]: result row `(b, n)` is
    `input[b, index[b, n]]`. A prompt's prefill keeps only the row of its
    last token, whose logits predict the first new token.

    Example:
    ```mlir
    %last = moe.select_rows %h[%index]
        : (tensor<2x16x64xf32>, tensor<2x1xi32>) -> tensor<2x1x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_IndexTensor:$index);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `[` $index `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // MOE_GENERATE_OPS_TD
