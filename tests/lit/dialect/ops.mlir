// Round trip of every moe op: custom form, printed again, and through the
// generic form (which also exercises the properties encoding).
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK: moe.param @embed : tensor<256x64xf32> init #moe.normal<mean = 0.000000e+00, std = 2.000000e-02>
moe.param @embed : tensor<256x64xf32> init #moe.normal<mean = 0.0, std = 0.02>
// CHECK: moe.param @norm : tensor<64xbf16> init #moe.constant<1.000000e+00>
moe.param @norm : tensor<64xbf16> init #moe.constant<1.0>
// CHECK: moe.param @"experts.*.w1" : tensor<4x128x64xf32> init #moe.normal<mean = 1.000000e-01, std = 0.000000e+00>
moe.param @"experts.*.w1" : tensor<4x128x64xf32> init #moe.normal<mean = 0.1, std = 0.0>

// CHECK-LABEL: func.func @params
func.func @params() -> (tensor<256x64xf32>, tensor<64xbf16>) {
  // CHECK: %[[E:.*]] = moe.read_param @embed : tensor<256x64xf32>
  %e = moe.read_param @embed : tensor<256x64xf32>
  // CHECK: %[[N:.*]] = moe.read_param @norm : tensor<64xbf16>
  %n = moe.read_param @norm : tensor<64xbf16>
  // CHECK: return %[[E]], %[[N]]
  return %e, %n : tensor<256x64xf32>, tensor<64xbf16>
}

// CHECK-LABEL: func.func @layers
// CHECK-SAME: (%[[TABLE:.*]]: tensor<256x64xf32>, %[[IDS:.*]]: tensor<?x?xi32>, %[[NW:.*]]: tensor<64xf32>, %[[W:.*]]: tensor<96x64xf32>, %[[POS:.*]]: tensor<?x?xi64>
func.func @layers(%table: tensor<256x64xf32>, %ids: tensor<?x?xi32>,
                  %nw: tensor<64xf32>, %w: tensor<96x64xf32>,
                  %pos: tensor<?x?xi64>, %k: tensor<?x?x48xf32>)
    -> tensor<?x?x96xf32> {
  // CHECK: %[[H:.*]] = moe.embedding %[[TABLE]][%[[IDS]]] : (tensor<256x64xf32>, tensor<?x?xi32>) -> tensor<?x?x64xf32>
  %h = moe.embedding %table[%ids] : (tensor<256x64xf32>, tensor<?x?xi32>) -> tensor<?x?x64xf32>
  // CHECK: %[[N:.*]] = moe.rms_norm %[[H]], %[[NW]] {epsilon = 1.000000e-05 : f64} : tensor<?x?x64xf32>, tensor<64xf32>
  %n = moe.rms_norm %h, %nw {epsilon = 1.0e-05 : f64} : tensor<?x?x64xf32>, tensor<64xf32>
  // CHECK: %[[Q:.*]] = moe.linear %[[N]], %[[W]] : (tensor<?x?x64xf32>, tensor<96x64xf32>) -> tensor<?x?x96xf32>
  %q = moe.linear %n, %w : (tensor<?x?x64xf32>, tensor<96x64xf32>) -> tensor<?x?x96xf32>
  // CHECK: %[[QR:.*]] = moe.rope %[[Q]] {num_heads = 4 : i64, theta = 1.000000e+04 : f64} : tensor<?x?x96xf32>
  %qr = moe.rope %q {num_heads = 4 : i64, theta = 1.0e+04 : f64} : tensor<?x?x96xf32>
  // CHECK: moe.rope %[[QR]] positions %[[POS]] : tensor<?x?xi64> {num_heads = 4 : i64, theta = 5.000000e+05 : f64} : tensor<?x?x96xf32>
  %qp = moe.rope %qr positions %pos : tensor<?x?xi64> {num_heads = 4 : i64, theta = 5.0e+05 : f64} : tensor<?x?x96xf32>
  // CHECK: moe.attention %{{.*}}, %{{.*}}, %{{.*}} {causal, num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<?x?x96xf32>, tensor<?x?x48xf32>
  %a = moe.attention %qp, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, causal} : tensor<?x?x96xf32>, tensor<?x?x48xf32>
  // CHECK: moe.attention {{.*}} {num_heads = 4 : i64, num_kv_heads = 4 : i64, scale = 1.250000e-01 : f64} : tensor<?x?x96xf32>, tensor<?x?x96xf32>
  %b = moe.attention %a, %a, %a {num_heads = 4 : i64, num_kv_heads = 4 : i64, scale = 0.125 : f64} : tensor<?x?x96xf32>, tensor<?x?x96xf32>
  // CHECK: moe.add {{.*}} : tensor<?x?x96xf32>
  %s = moe.add %a, %b : tensor<?x?x96xf32>
  // CHECK: moe.mul {{.*}} : tensor<?x?x96xf32>
  %m = moe.mul %s, %q : tensor<?x?x96xf32>
  // CHECK: moe.silu {{.*}} : tensor<?x?x96xf32>
  %si = moe.silu %m : tensor<?x?x96xf32>
  // CHECK: moe.swiglu {{.*}} : tensor<?x?x96xf32>
  %sw = moe.swiglu %si, %m : tensor<?x?x96xf32>
  return %sw : tensor<?x?x96xf32>
}

// CHECK-LABEL: func.func @moe_block
func.func @moe_block(%x: tensor<?x?x64xf32>, %gate: tensor<4x64xf32>,
                     %w1: tensor<4x128x64xf32>, %w3: tensor<4x128x64xf32>,
                     %w2: tensor<4x64x128xf32>) -> tensor<?x?x64xf32> {
  // CHECK: %[[L:.*]], %[[W:.*]], %[[I:.*]] = moe.router %{{.*}}, %{{.*}} {normalize, top_k = 2 : i64} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  %logits, %w, %idx = moe.router %x, %gate {top_k = 2 : i64, normalize} : (tensor<?x?x64xf32>, tensor<4x64xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi32>)
  // CHECK: %[[G:.*]], %[[C:.*]], %[[S:.*]] = moe.dispatch %{{.*}}, %[[I]] {num_experts = 4 : i64} : (tensor<?x?x64xf32>, tensor<?x?x2xi32>) -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
  %g, %counts, %slots = moe.dispatch %x, %idx {num_experts = 4 : i64} : (tensor<?x?x64xf32>, tensor<?x?x2xi32>) -> (tensor<?x64xf32>, tensor<4xi64>, tensor<?xi32>)
  // CHECK: %[[Y:.*]] = moe.expert_mlp %[[G]], %[[C]], %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
  %y = moe.expert_mlp %g, %counts, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
  // CHECK: moe.combine %[[Y]], %[[W]], %[[S]] : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>) -> tensor<?x?x64xf32>
  %o = moe.combine %y, %w, %slots : (tensor<?x64xf32>, tensor<?x?x2xf32>, tensor<?xi32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @static_moe_block
func.func @static_moe_block(%x: tensor<2x3x64xbf16>, %gate: tensor<4x64xbf16>)
    -> (tensor<6x64xbf16>, tensor<4xi64>) {
  // CHECK: moe.router {{.*}} {top_k = 1 : i64} : (tensor<2x3x64xbf16>, tensor<4x64xbf16>) -> (tensor<2x3x4xbf16>, tensor<2x3x1xbf16>, tensor<2x3x1xi64>)
  %logits, %w, %idx = moe.router %x, %gate {top_k = 1 : i64} : (tensor<2x3x64xbf16>, tensor<4x64xbf16>) -> (tensor<2x3x4xbf16>, tensor<2x3x1xbf16>, tensor<2x3x1xi64>)
  // CHECK: moe.dispatch {{.*}} -> (tensor<6x64xbf16>, tensor<4xi64>, tensor<6xi32>)
  %g, %counts, %slots = moe.dispatch %x, %idx {num_experts = 4 : i64} : (tensor<2x3x64xbf16>, tensor<2x3x1xi64>) -> (tensor<6x64xbf16>, tensor<4xi64>, tensor<6xi32>)
  return %g, %counts : tensor<6x64xbf16>, tensor<4xi64>
}

// CHECK-LABEL: func.func @losses
func.func @losses(%logits: tensor<?x?x256xf32>, %labels: tensor<?x?xi32>,
                  %r0: tensor<?x?x4xf32>, %r1: tensor<?x4xf32>)
    -> (tensor<f32>, tensor<f32>, tensor<f32>) {
  // CHECK: moe.cross_entropy %{{.*}}, %{{.*}} {ignore_index = -1 : i64} : tensor<?x?x256xf32>, tensor<?x?xi32>
  %ce = moe.cross_entropy %logits, %labels {ignore_index = -1 : i64} : tensor<?x?x256xf32>, tensor<?x?xi32>
  // CHECK: moe.cross_entropy %{{.*}}, %{{.*}} : tensor<?x?x256xf32>, tensor<?x?xi32>
  %ce2 = moe.cross_entropy %logits, %labels : tensor<?x?x256xf32>, tensor<?x?xi32>
  // CHECK: moe.load_balancing_loss %{{.*}}, %{{.*}}, %{{.*}} {top_k = 2 : i64} : tensor<?x?xi32>, tensor<?x?x4xf32>, tensor<?x4xf32>
  %aux = moe.load_balancing_loss %labels, %r0, %r1 {top_k = 2 : i64} : tensor<?x?xi32>, tensor<?x?x4xf32>, tensor<?x4xf32>
  // CHECK: moe.router_z_loss %{{.*}}, %{{.*}} {ignore_index = 0 : i64} : tensor<?x?xi32>, tensor<?x?x4xf32>
  %z = moe.router_z_loss %labels, %r0 {ignore_index = 0 : i64} : tensor<?x?xi32>, tensor<?x?x4xf32>
  return %ce, %aux, %z : tensor<f32>, tensor<f32>, tensor<f32>
}

// CHECK-LABEL: func.func @initialisation
func.func @initialisation(%w: tensor<6x8xf32>, %d: tensor<8x6xbf16>) -> tensor<2x6x8xf32> {
  // CHECK: %[[I:.*]] = moe.random_indices {count = 3 : i64, range = 6 : i64, seed = 7 : i64, stream = "e0.w1"} : tensor<3xi64>
  %i = moe.random_indices {count = 3 : i64, range = 6 : i64, seed = 7 : i64, stream = "e0.w1"} : tensor<3xi64>
  // CHECK: %[[M:.*]], %[[S:.*]] = moe.slice_moments %{{.*}}, %[[I]] {axis = 0 : i64} : tensor<6x8xf32>, tensor<3xi64>
  %mean, %std = moe.slice_moments %w, %i {axis = 0 : i64} : tensor<6x8xf32>, tensor<3xi64>
  // CHECK: %[[R:.*]] = moe.resample_slice %{{.*}}, %[[I]], %[[M]], %[[S]] {axis = 0 : i64, seed = 7 : i64, stream = "e0.w1.values"} : tensor<6x8xf32>, tensor<3xi64>
  %r = moe.resample_slice %w, %i, %mean, %std {axis = 0 : i64, seed = 7 : i64, stream = "e0.w1.values"} : tensor<6x8xf32>, tensor<3xi64>
  // CHECK: moe.add_noise_slice %{{.*}}, %[[I]] {axis = 1 : i64, seed = 7 : i64, std = 2.000000e-02 : f64, stream = "e0.w2"} : tensor<8x6xbf16>, tensor<3xi64>
  %n = moe.add_noise_slice %d, %i {axis = 1 : i64, std = 0.02 : f64, seed = 7 : i64, stream = "e0.w2"} : tensor<8x6xbf16>, tensor<3xi64>
  // CHECK: moe.random_tensor {distribution = "centered_uniform", seed = 7 : i64, std = 2.000000e-02 : f64, stream = "gate"} : tensor<2x8xf32>
  %g = moe.random_tensor {distribution = "centered_uniform", std = 0.02 : f64, seed = 7 : i64, stream = "gate"} : tensor<2x8xf32>
  // CHECK: %[[ST:.*]] = moe.stack %[[R]], %{{.*}} : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<2x6x8xf32>
  %s = moe.stack %r, %w : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<2x6x8xf32>
  return %s : tensor<2x6x8xf32>
}

// CHECK-LABEL: func.func @write
func.func @write(%v: tensor<4x128x64xf32>) {
  // CHECK: moe.write_param @"experts.*.w1" = %{{.*}} : tensor<4x128x64xf32>
  moe.write_param @"experts.*.w1" = %v : tensor<4x128x64xf32>
  return
}

// CHECK: moe.kv_cache @k_cache : tensor<2x16x32xf32>
moe.kv_cache @k_cache : tensor<2x16x32xf32>
// CHECK: moe.kv_cache @v_cache : tensor<2x16x32xf32>
moe.kv_cache @v_cache : tensor<2x16x32xf32>

// CHECK-LABEL: func.func @generation
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x64xf32>, %[[K:.*]]: tensor<2x4x32xf32>, %[[POS:.*]]: tensor<2x4xi32>, %[[LAST:.*]]: tensor<2x1xi32>)
func.func @generation(%q: tensor<2x4x64xf32>, %k: tensor<2x4x32xf32>,
                      %pos: tensor<2x4xi32>, %last: tensor<2x1xi32>)
    -> tensor<2x1x64xf32> {
  // CHECK: moe.cache_write @k_cache = %[[K]] positions %[[POS]] : tensor<2x4x32xf32>, tensor<2x4xi32>
  moe.cache_write @k_cache = %k positions %pos : tensor<2x4x32xf32>, tensor<2x4xi32>
  // CHECK: moe.cache_write @v_cache = %[[K]] positions %[[POS]]
  moe.cache_write @v_cache = %k positions %pos : tensor<2x4x32xf32>, tensor<2x4xi32>
  // CHECK: %[[A:.*]] = moe.cached_attention %[[Q]] positions %[[POS]] keys @k_cache values @v_cache {num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<2x4x64xf32>, tensor<2x4xi32>
  %a = moe.cached_attention %q positions %pos keys @k_cache values @v_cache
      {num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<2x4x64xf32>, tensor<2x4xi32>
  // CHECK: %[[S:.*]] = moe.select_rows %[[A]][%[[LAST]]] : (tensor<2x4x64xf32>, tensor<2x1xi32>) -> tensor<2x1x64xf32>
  %s = moe.select_rows %a[%last] : (tensor<2x4x64xf32>, tensor<2x1xi32>) -> tensor<2x1x64xf32>
  // CHECK: return %[[S]]
  return %s : tensor<2x1x64xf32>
}

// CHECK-LABEL: func.func @family_layers
func.func @family_layers(%x: tensor<?x?x64xf32>, %b: tensor<64xf32>,
                         %g: tensor<?x?x1xf32>, %hw: tensor<16xf32>)
    -> tensor<?x?x64xf32> {
  // CHECK: %[[B:.*]] = moe.add_bias %{{.*}}, %{{.*}} : tensor<?x?x64xf32>, tensor<64xf32>
  %0 = moe.add_bias %x, %b : tensor<?x?x64xf32>, tensor<64xf32>
  // CHECK: %[[N:.*]] = moe.rms_norm %[[B]], %{{.*}} {epsilon = 1.000000e-05 : f64} : tensor<?x?x64xf32>, tensor<16xf32>
  %1 = moe.rms_norm %0, %hw {epsilon = 1.0e-5 : f64} : tensor<?x?x64xf32>, tensor<16xf32>
  // CHECK: %[[C:.*]] = moe.clamp %[[N]] {limit = 8.000000e+00 : f64} : tensor<?x?x64xf32>
  %2 = moe.clamp %1 {limit = 8.0 : f64} : tensor<?x?x64xf32>
  // CHECK: %[[S:.*]] = moe.sigmoid_gate %[[C]], %{{.*}} : tensor<?x?x64xf32>, tensor<?x?x1xf32>
  %3 = moe.sigmoid_gate %2, %g : tensor<?x?x64xf32>, tensor<?x?x1xf32>
  // CHECK: moe.bias_grad %[[S]] : tensor<?x?x64xf32> -> tensor<64xf32>
  %4 = moe.bias_grad %3 : tensor<?x?x64xf32> -> tensor<64xf32>
  // CHECK: moe.clamp_grad %[[N]], %[[S]] {limit = 8.000000e+00 : f64} : tensor<?x?x64xf32>
  %5 = moe.clamp_grad %1, %3 {limit = 8.0 : f64} : tensor<?x?x64xf32>
  // CHECK: %{{.*}}, %{{.*}} = moe.sigmoid_gate_grad %[[C]], %{{.*}}, %[[S]] : tensor<?x?x64xf32>, tensor<?x?x1xf32>
  %6:2 = moe.sigmoid_gate_grad %2, %g, %3 : tensor<?x?x64xf32>, tensor<?x?x1xf32>
  return %3 : tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @fine_experts
func.func @fine_experts(%w: tensor<8x6xf32>) -> tensor<8x2xf32> {
  // CHECK: %[[S:.*]] = moe.slice %{{.*}} {axis = 1 : i64, offset = 4 : i64} : tensor<8x6xf32> -> tensor<8x2xf32>
  %0 = moe.slice %w {axis = 1 : i64, offset = 4 : i64} : tensor<8x6xf32> -> tensor<8x2xf32>
  // CHECK: moe.scale %[[S]] {factor = 3.000000e+00 : f64} : tensor<8x2xf32>
  %1 = moe.scale %0 {factor = 3.0 : f64} : tensor<8x2xf32>
  return %1 : tensor<8x2xf32>
}
