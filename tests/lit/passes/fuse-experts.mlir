// RUN: moe-opt %s --split-input-file --moe-fuse-experts --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-fuse-experts --mlir-print-debuginfo 2>/dev/null | FileCheck %s --check-prefix=LOC

// One block: router, dispatch, expert MLPs and combine become one op named
// after the block, and the logits' other reader (a loss) reads the fused
// op's logits.
// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x64xf32>, %[[R:.*]]: tensor<4x64xf32>, %[[G:.*]]: tensor<4x128x64xf32>, %[[U:.*]]: tensor<4x128x64xf32>, %[[D:.*]]: tensor<4x64x128xf32>, %{{.*}}: tensor<2x8xi32>)
// CHECK-NEXT: %[[Y:.*]], %[[L:.*]] = moe.fused_experts %[[X]], %[[R]], %[[G]], %[[U]], %[[D]] {activation = "swiglu", normalize, top_k = 2 : i64} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
// CHECK-NEXT: %[[AUX:.*]] = moe.load_balancing_loss %{{.*}}, %[[L]] {top_k = 2 : i64}
// CHECK-NEXT: return %[[Y]], %[[AUX]]
// LOC: moe.fused_experts {{.*}} loc(#[[LOC:.*]])
// LOC: #[[FILE:.*]] = loc("config.json":1:1)
// LOC: #[[LOC]] = loc("model.layers.3.block_sparse_moe"(#[[FILE]]))
func.func @block(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>, %labels: tensor<2x8xi32>) -> (tensor<2x8x64xf32>, tensor<f32>) {
  %logits, %w, %idx = moe.router %x, %r {top_k = 2 : i64, normalize} : (tensor<2x8x64xf32>, tensor<4x64xf32>) -> (tensor<2x8x4xf32>, tensor<2x8x2xf32>, tensor<2x8x2xi32>) loc(#gate)
  %grouped, %counts, %slots = moe.dispatch %x, %idx {num_experts = 4 : i64} : (tensor<2x8x64xf32>, tensor<2x8x2xi32>) -> (tensor<32x64xf32>, tensor<4xi64>, tensor<32xi32>) loc(#dispatch)
  %y = moe.expert_mlp %grouped, %counts, %g, %u, %d : tensor<32x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32> loc(#experts)
  %out = moe.combine %y, %w, %slots : (tensor<32x64xf32>, tensor<2x8x2xf32>, tensor<32xi32>) -> tensor<2x8x64xf32> loc(#combine)
  %aux = moe.load_balancing_loss %labels, %logits {top_k = 2 : i64} : tensor<2x8xi32>, tensor<2x8x4xf32>
  return %out, %aux : tensor<2x8x64xf32>, tensor<f32>
}
#file = loc("config.json":1:1)
#gate = loc("model.layers.3.block_sparse_moe.gate"(#file))
#dispatch = loc("model.layers.3.block_sparse_moe.dispatch"(#file))
#experts = loc("model.layers.3.block_sparse_moe.experts"(#file))
#combine = loc("model.layers.3.block_sparse_moe.combine"(#file))

// -----

// Top-1 without renormalisation, dynamic token dims: the attributes carry
// over and the result keeps the combine's type.
// CHECK-LABEL: func.func @top1
// CHECK: moe.fused_experts {{.*}} {activation = "swiglu", top_k = 1 : i64} : (tensor<?x?x64xf32>, tensor<3x64xf32>, {{.*}}) -> (tensor<?x?x64xf32>, tensor<?x?x3xf32>)
// CHECK-NOT: moe.dispatch
func.func @top1(%x: tensor<?x?x64xf32>, %r: tensor<3x64xf32>, %g: tensor<3x16x64xf32>, %u: tensor<3x16x64xf32>, %d: tensor<3x64x16xf32>) -> tensor<?x?x64xf32> {
  %logits, %w, %idx = moe.router %x, %r {top_k = 1 : i64} : (tensor<?x?x64xf32>, tensor<3x64xf32>) -> (tensor<?x?x3xf32>, tensor<?x?x1xf32>, tensor<?x?x1xi32>)
  %grouped, %counts, %slots = moe.dispatch %x, %idx {num_experts = 3 : i64} : (tensor<?x?x64xf32>, tensor<?x?x1xi32>) -> (tensor<?x64xf32>, tensor<3xi64>, tensor<?xi32>)
  %y = moe.expert_mlp %grouped, %counts, %g, %u, %d : tensor<?x64xf32>, tensor<3xi64>, tensor<3x16x64xf32>, tensor<3x16x64xf32>, tensor<3x64x16xf32>
  %out = moe.combine %y, %w, %slots : (tensor<?x64xf32>, tensor<?x?x1xf32>, tensor<?xi32>) -> tensor<?x?x64xf32>
  return %out : tensor<?x?x64xf32>
}

// -----

// A value inside the block that something else reads: fusing would lose it,
// so the chain stays, with a remark.
// CHECK-LABEL: func.func @leaky
// CHECK-NOT: moe.fused_experts
// CHECK: moe.combine
func.func @leaky(%x: tensor<2x8x64xf32>, %r: tensor<4x64xf32>, %g: tensor<4x128x64xf32>, %u: tensor<4x128x64xf32>, %d: tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<4xi64>) {
  %logits, %w, %idx = moe.router %x, %r {top_k = 2 : i64, normalize} : (tensor<2x8x64xf32>, tensor<4x64xf32>) -> (tensor<2x8x4xf32>, tensor<2x8x2xf32>, tensor<2x8x2xi32>)
  %grouped, %counts, %slots = moe.dispatch %x, %idx {num_experts = 4 : i64} : (tensor<2x8x64xf32>, tensor<2x8x2xi32>) -> (tensor<32x64xf32>, tensor<4xi64>, tensor<32xi32>)
  %y = moe.expert_mlp %grouped, %counts, %g, %u, %d : tensor<32x64xf32>, tensor<4xi64>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>
  // expected-remark @+1 {{moe-fuse-experts: not fused: an intermediate value also feeds func.return}}
  %out = moe.combine %y, %w, %slots : (tensor<32x64xf32>, tensor<2x8x2xf32>, tensor<32xi32>) -> tensor<2x8x64xf32>
  return %out, %counts : tensor<2x8x64xf32>, tensor<4xi64>
}

// -----

// Rows that do not come from a dispatch are not a block.
// CHECK-LABEL: func.func @not_a_block
// CHECK: moe.combine
func.func @not_a_block(%y: tensor<32x64xf32>, %w: tensor<2x8x2xf32>, %slots: tensor<32xi32>) -> tensor<2x8x64xf32> {
  // expected-remark @+1 {{moe-fuse-experts: not fused: its rows do not come from router -> dispatch -> expert_mlp}}
  %out = moe.combine %y, %w, %slots : (tensor<32x64xf32>, tensor<2x8x2xf32>, tensor<32xi32>) -> tensor<2x8x64xf32>
  return %out : tensor<2x8x64xf32>
}
