// RUN: moe-opt %s --split-input-file --moe-generate="batch=2 seq=16 prefill=4" --verify-diagnostics | FileCheck %s

// @forward becomes @prefill (4 rows, logits of the row `last` picks) and
// @decode_step (1 row) over one key and one value cache per attention,
// named after the layer; ropes rotate at the positions, the attention
// writes its keys and values and attends over the caches.
// CHECK: moe.kv_cache @model.layers.0.self_attn.k_cache : tensor<2x16x16xf32>
// CHECK-NEXT: moe.kv_cache @model.layers.0.self_attn.v_cache : tensor<2x16x16xf32>
// CHECK-NOT: @forward
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x4xi32>, %[[POS:.*]]: tensor<2x4xi32>, %[[LAST:.*]]: tensor<2x1xi32>) -> tensor<2x1x64xf32>
// CHECK: %[[H:.*]] = moe.embedding %{{.*}}[%[[IDS]]]
// CHECK: %[[K:.*]] = moe.linear %[[H]]
// CHECK: %[[Q:.*]] = moe.rope %[[H]] positions %[[POS]]
// CHECK: %[[KR:.*]] = moe.rope %[[K]] positions %[[POS]]
// CHECK: moe.cache_write @model.layers.0.self_attn.k_cache = %[[KR]] positions %[[POS]] : tensor<2x4x16xf32>, tensor<2x4xi32>
// CHECK: moe.cache_write @model.layers.0.self_attn.v_cache = %[[K]] positions %[[POS]]
// CHECK: %[[A:.*]] = moe.cached_attention %[[Q]] positions %[[POS]] keys @model.layers.0.self_attn.k_cache values @model.layers.0.self_attn.v_cache {num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<2x4x32xf32>
// CHECK: %[[S:.*]] = moe.select_rows %[[A]][%[[LAST]]] : (tensor<2x4x32xf32>, tensor<2x1xi32>) -> tensor<2x1x32xf32>
// CHECK: %[[L:.*]] = moe.linear %[[S]], %{{.*}} : (tensor<2x1x32xf32>, tensor<64x32xf32>) -> tensor<2x1x64xf32>
// CHECK: return %[[L]]
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: (%{{.*}}: tensor<2x1xi32>, %[[DPOS:.*]]: tensor<2x1xi32>) -> tensor<2x1x64xf32>
// CHECK: moe.cache_write @model.layers.0.self_attn.k_cache = %{{.*}} positions %[[DPOS]] : tensor<2x1x16xf32>
// CHECK: moe.cached_attention %{{.*}} positions %[[DPOS]] keys @model.layers.0.self_attn.k_cache
// CHECK-NOT: moe.select_rows
// CHECK: return
#file = loc("config.json":1:1)
#attn = loc("model.layers.0.self_attn"(#file))
#head = loc("lm_head"(#file))
moe.param @embed : tensor<64x32xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @wk : tensor<16x32xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @head : tensor<64x32xf32> init #moe.normal<mean = 0.0, std = 0.02>
func.func @forward(%ids: tensor<?x?xi32>) -> tensor<?x?x64xf32> {
  %e = moe.read_param @embed : tensor<64x32xf32>
  %h = moe.embedding %e[%ids] : (tensor<64x32xf32>, tensor<?x?xi32>) -> tensor<?x?x32xf32>
  %wk = moe.read_param @wk : tensor<16x32xf32>
  %k = moe.linear %h, %wk : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
  %q = moe.rope %h {num_heads = 4 : i64, theta = 1.0e+04 : f64} : tensor<?x?x32xf32>
  %kr = moe.rope %k {num_heads = 2 : i64, theta = 1.0e+04 : f64} : tensor<?x?x16xf32>
  %a = moe.attention %q, %kr, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<?x?x32xf32>, tensor<?x?x16xf32> loc(#attn)
  %w = moe.read_param @head : tensor<64x32xf32>
  %logits = moe.linear %a, %w : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32> loc(#head)
  return %logits : tensor<?x?x64xf32>
}

// -----

moe.param @embed : tensor<64x32xf32> init #moe.normal<mean = 0.0, std = 0.02>
func.func @forward(%ids: tensor<?x?xi32>) -> tensor<?x?x32xf32> {
  %e = moe.read_param @embed : tensor<64x32xf32>
  %h = moe.embedding %e[%ids] : (tensor<64x32xf32>, tensor<?x?xi32>) -> tensor<?x?x32xf32>
  // expected-error @+1 {{moe-generate: only causal attention can decode with a cache}}
  %a = moe.attention %h, %h, %h {num_heads = 4 : i64, num_kv_heads = 4 : i64} : tensor<?x?x32xf32>, tensor<?x?x32xf32>
  return %a : tensor<?x?x32xf32>
}

// -----

// expected-error @+1 {{moe-generate: no function @forward}}
module {
}
