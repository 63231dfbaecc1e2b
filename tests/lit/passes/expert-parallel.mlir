// RUN: moe-opt %s --split-input-file --moe-expert-parallel="ranks=4 expert-parallel=2" --verify-diagnostics | FileCheck %s
// RUN: not moe-opt %s --split-input-file --moe-expert-parallel="ranks=4" 2>/dev/null | FileCheck %s --check-prefix=EP4
// RUN: not moe-opt %s --split-input-file --moe-expert-parallel="ranks=4" 2>&1 >/dev/null | FileCheck %s --check-prefix=EP4-ERROR

// Each stacked expert weight becomes one rank's share (4 experts over 2
// ranks: 2 each); the router and everything dense stay whole; the block
// records the split and the module the ranks.
// CHECK-LABEL: module attributes {moe.expert_parallel = 2 : i64, moe.ranks = 4 : i64}
// CHECK: moe.param @model.layers.0.block_sparse_moe.gate.weight : tensor<4x64xf32>
// CHECK: moe.param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<2x128x64xf32>
// CHECK: moe.param @"model.layers.0.block_sparse_moe.experts.*.w3.weight" : tensor<2x128x64xf32>
// CHECK: moe.param @"model.layers.0.block_sparse_moe.experts.*.w2.weight" : tensor<2x64x128xf32>
// CHECK: %[[G:.*]] = moe.read_param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<2x128x64xf32>
// CHECK: moe.fused_experts {{.*}} {activation = "swiglu", expert_parallel = 2 : i64, normalize, top_k = 2 : i64} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<2x128x64xf32>, tensor<2x128x64xf32>, tensor<2x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
// EP4: module attributes {moe.expert_parallel = 4 : i64, moe.ranks = 4 : i64}
// EP4: moe.param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<1x128x64xf32>
module {
  moe.param @"model.layers.0.block_sparse_moe.gate.weight" : tensor<4x64xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<4x128x64xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @"model.layers.0.block_sparse_moe.experts.*.w3.weight" : tensor<4x128x64xf32> init #moe.normal<mean = 0.0, std = 0.02>
  moe.param @"model.layers.0.block_sparse_moe.experts.*.w2.weight" : tensor<4x64x128xf32> init #moe.normal<mean = 0.0, std = 0.02>
  func.func @forward(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
    %r = moe.read_param @"model.layers.0.block_sparse_moe.gate.weight" : tensor<4x64xf32>
    %g = moe.read_param @"model.layers.0.block_sparse_moe.experts.*.w1.weight" : tensor<4x128x64xf32>
    %u = moe.read_param @"model.layers.0.block_sparse_moe.experts.*.w3.weight" : tensor<4x128x64xf32>
    %d = moe.read_param @"model.layers.0.block_sparse_moe.experts.*.w2.weight" : tensor<4x64x128xf32>
    %y, %logits = moe.fused_experts %x, %r, %g, %u, %d {top_k = 2 : i64, normalize, activation = "swiglu"} : (tensor<2x8x64xf32>, tensor<4x64xf32>, tensor<4x128x64xf32>, tensor<4x128x64xf32>, tensor<4x64x128xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
    return %y : tensor<2x8x64xf32>
  }
}

// -----

// 6 experts do not split over 4 ranks (EP4); over 2 they do.
// CHECK-LABEL: module attributes {moe.expert_parallel = 2 : i64, moe.ranks = 4 : i64}
// CHECK: moe.param @"e.*.w1" : tensor<3x16x8xf32>
// EP4-ERROR: error: moe-expert-parallel: expert-parallel 4 does not divide this block's 6 experts
module {
  moe.param @"e.*.w1" : tensor<6x16x8xf32> init #moe.constant<0.0>
  moe.param @"e.*.w3" : tensor<6x16x8xf32> init #moe.constant<0.0>
  moe.param @"e.*.w2" : tensor<6x8x16xf32> init #moe.constant<0.0>
  func.func @forward(%x: tensor<4x8xf32>, %r: tensor<6x8xf32>) -> tensor<4x8xf32> {
    %g = moe.read_param @"e.*.w1" : tensor<6x16x8xf32>
    %u = moe.read_param @"e.*.w3" : tensor<6x16x8xf32>
    %d = moe.read_param @"e.*.w2" : tensor<6x8x16xf32>
    %y, %logits = moe.fused_experts %x, %r, %g, %u, %d {top_k = 2 : i64, activation = "swiglu"} : (tensor<4x8xf32>, tensor<6x8xf32>, tensor<6x16x8xf32>, tensor<6x16x8xf32>, tensor<6x8x16xf32>) -> (tensor<4x8xf32>, tensor<4x6xf32>)
    return %y : tensor<4x8xf32>
  }
}

// -----

// An expert weight that is not a stacked parameter cannot be split.
module {
  func.func @forward(%x: tensor<4x8xf32>, %r: tensor<2x8xf32>, %g: tensor<2x16x8xf32>, %d: tensor<2x8x16xf32>) -> tensor<4x8xf32> {
    // expected-error@+1 {{moe-expert-parallel: an expert weight of this block is not a stacked expert parameter (a moe.param named with '*')}}
    %y, %logits = moe.fused_experts %x, %r, %g, %g, %d {top_k = 1 : i64, activation = "swiglu"} : (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x8x16xf32>) -> (tensor<4x8xf32>, tensor<4x2xf32>)
    return %y : tensor<4x8xf32>
  }
}

// -----

// An unfused block is refused: the split cuts fused blocks.
module {
  func.func @forward(%grouped: tensor<8x8xf32>, %counts: tensor<2xi64>, %g: tensor<2x16x8xf32>, %d: tensor<2x8x16xf32>) -> tensor<8x8xf32> {
    // expected-error@+1 {{moe-expert-parallel: this MoE block is not fused}}
    %y = moe.expert_mlp %grouped, %counts, %g, %g, %d : tensor<8x8xf32>, tensor<2xi64>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x8x16xf32>
    return %y : tensor<8x8xf32>
  }
}

// -----

// An expert weight something else also reads.
module {
  moe.param @"e.*.w1" : tensor<2x16x8xf32> init #moe.constant<0.0>
  moe.param @"e.*.w2" : tensor<2x8x16xf32> init #moe.constant<0.0>
  func.func @forward(%x: tensor<4x8xf32>, %r: tensor<2x8xf32>) -> (tensor<4x8xf32>, tensor<2x16x8xf32>) {
    %g = moe.read_param @"e.*.w1" : tensor<2x16x8xf32>
    %d = moe.read_param @"e.*.w2" : tensor<2x8x16xf32>
    %y, %logits = moe.fused_experts %x, %r, %g, %g, %d {top_k = 1 : i64, activation = "swiglu"} : (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x8x16xf32>) -> (tensor<4x8xf32>, tensor<4x2xf32>)
    // expected-error@+1 {{moe-expert-parallel: expert parameter e.*.w1 is read by an op other than a fused MoE block}}
    %twice = moe.add %g, %g : tensor<2x16x8xf32>
    return %y, %twice : tensor<4x8xf32>, tensor<2x16x8xf32>
  }
}

// -----

// Drop-Upcycling's @initialize: the stack of a split parameter's experts
// becomes one rank's share (the runtime runs only what feeds it).
// CHECK-LABEL: func.func @initialize
// CHECK: moe.stack %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {expert_parallel = 2 : i64} : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<2x16x8xf32>
// CHECK: moe.write_param @"e.*.w1" = %{{.*}} : tensor<2x16x8xf32>
module {
  moe.param @"e.*.w1" : tensor<4x16x8xf32> init #moe.constant<0.0>
  moe.param @"e.*.w2" : tensor<4x8x16xf32> init #moe.constant<0.0>
  func.func @forward(%x: tensor<4x8xf32>, %r: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %g = moe.read_param @"e.*.w1" : tensor<4x16x8xf32>
    %d = moe.read_param @"e.*.w2" : tensor<4x8x16xf32>
    %y, %logits = moe.fused_experts %x, %r, %g, %g, %d {top_k = 1 : i64, activation = "swiglu"} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x16x8xf32>, tensor<4x16x8xf32>, tensor<4x8x16xf32>) -> (tensor<4x8xf32>, tensor<4x4xf32>)
    return %y : tensor<4x8xf32>
  }
  func.func @initialize(%w: tensor<16x8xf32>) {
    %s = moe.stack %w, %w, %w, %w : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<4x16x8xf32>
    moe.write_param @"e.*.w1" = %s : tensor<4x16x8xf32>
    return
  }
}
