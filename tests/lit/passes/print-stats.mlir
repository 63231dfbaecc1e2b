// RUN: moe-opt %s --moe-print-stats=seq-len=8 | FileCheck %s

// One MoE layer: 4 experts of width 32 over d=16, top-1, a 16->8 head.
// CHECK: layers: 0
// CHECK: moe_layers: 1
// CHECK: experts: 4
// CHECK: experts_per_token: 1
// 4*16 router + 3*4*32*16 experts + 8*16 head
// CHECK: total_params: 6336
// 4*16 + 3*32*16 + 8*16
// CHECK: active_params: 1728
// CHECK: expert_params: 6144
// CHECK: seq_len: 8
// 2*(4*16 + 3*32*16 + 8*16)
// CHECK: flops_per_token: 3456
// CHECK: attention_flops_per_token: 0
moe.param @gate : tensor<4x16xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @w1 : tensor<4x32x16xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @w3 : tensor<4x32x16xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @w2 : tensor<4x16x32xf32> init #moe.normal<mean = 0.0, std = 0.02>
moe.param @head : tensor<8x16xf32> init #moe.normal<mean = 0.0, std = 0.02>
func.func @forward(%x: tensor<?x16xf32>) -> tensor<?x8xf32> {
  %gate = moe.read_param @gate : tensor<4x16xf32>
  %l, %w, %i = moe.router %x, %gate {top_k = 1 : i64, normalize} : (tensor<?x16xf32>, tensor<4x16xf32>) -> (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi32>)
  %g, %c, %s = moe.dispatch %x, %i {num_experts = 4 : i64} : (tensor<?x16xf32>, tensor<?x1xi32>) -> (tensor<?x16xf32>, tensor<4xi64>, tensor<?xi32>)
  %w1 = moe.read_param @w1 : tensor<4x32x16xf32>
  %w3 = moe.read_param @w3 : tensor<4x32x16xf32>
  %w2 = moe.read_param @w2 : tensor<4x16x32xf32>
  %y = moe.expert_mlp %g, %c, %w1, %w3, %w2 : tensor<?x16xf32>, tensor<4xi64>, tensor<4x32x16xf32>, tensor<4x32x16xf32>, tensor<4x16x32xf32>
  %o = moe.combine %y, %w, %s : (tensor<?x16xf32>, tensor<?x1xf32>, tensor<?xi32>) -> tensor<?x16xf32>
  %head = moe.read_param @head : tensor<8x16xf32>
  %logits = moe.linear %o, %head : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  return %logits : tensor<?x8xf32>
}
